// Chat: a conversation with `model: "auto"` (the router picks image, diagram or text) or a chosen text model.
// Answers stream from /v1/chat/completions; every message is kept through /v1/conversations, so the sidebar
// lists the user's conversations and reopening one shows its messages, images and diagrams again.
"use strict";
document.addEventListener("alpine:init", () => {
  const { studio } = window;
  const HISTORY = 12; // messages sent as context: enough for a follow-up, short enough for small models
  const MAX_TOKENS = 256;
  const UNSURE_BELOW = 0.6; // a route the router gave less confidence than this offers the other routes
  const CONVERSATION_ID = /^conv_[0-9a-f]{24}$/;
  const PLANTUML_BLOCK = /```plantuml\n([\s\S]*?)\n```/;
  const ROUTE_NAMES = { image: "an image", diagram: "a diagram", chat: "text" };
  let nextKey = 0;

  /** What the page shows of a message, from an API item or a streamed answer. */
  const view = ({ id = null, role, content = "", model = null, route = null, attachments = [] }, prompt = "") => {
    const image = attachments.find((a) => a.type === "image") || null;
    const diagram = attachments.find((a) => a.type === "diagram") || null;
    const block = PLANTUML_BLOCK.exec(content);
    const plantuml = diagram && diagram.plantuml ? diagram.plantuml : block ? block[1] : "";
    let text = content;
    if (image) text = "Here is your image.";
    else if (diagram) text = "Here is your diagram.";
    else if (block) text = content.replace(PLANTUML_BLOCK, "").trim();
    return {
      key: `m${nextKey++}`,
      id,
      role,
      content,
      text,
      model,
      route,
      image,
      diagram,
      plantuml,
      draft: plantuml,
      // A diagram answer that PlantUML could not draw: the person may fix the source and draw it.
      drawable: role === "assistant" && !diagram && Boolean(block),
      prompt,
      pending: false,
      error: "",
      drawError: "",
      status: "",
    };
  };

  /** The route of an answer as a conversation item keeps it. */
  const routeOf = (route, forced) => {
    if (!route || !["image", "diagram", "chat"].includes(route.route)) return null;
    const score = route.scores ? route.scores[route.label] : 1;
    return {
      route: route.route,
      confidence: Math.min(1, Math.max(0, Number.isFinite(score) ? score : 0)),
      ambiguous: Boolean(route.ambiguous),
      forced: Boolean(forced),
    };
  };

  window.Alpine.data("chat", () => ({
    conversations: [],
    current: null,
    messages: [],
    models: [],
    model: "auto",
    draft: "",
    busy: false,
    error: "",
    listError: "",
    loaded: false,
    renaming: false,
    titleDraft: "",
    titleError: "",
    confirmingDelete: false,

    async init() {
      this.loadModels();
      await this.loadConversations();
      const wanted = window.location.hash.slice(1);
      const found = this.conversations.find((c) => c.id === wanted);
      if (CONVERSATION_ID.test(wanted) && found) await this.open(found);
    },

    get heading() {
      return this.current ? this.titleOf(this.current) : "New conversation";
    },
    get hasConversation() {
      return this.current !== null;
    },
    get noConversations() {
      return this.loaded && this.conversations.length === 0;
    },
    get noMessages() {
      return this.messages.length === 0;
    },
    titleOf(conversation) {
      return conversation.title || "Untitled conversation";
    },
    isCurrent(conversation) {
      return this.current !== null && this.current.id === conversation.id ? "page" : "false";
    },
    messageClass(message) {
      return message.role === "user" ? "message message-user" : "message message-assistant";
    },
    speaker(message) {
      return message.role === "user" ? "You" : "Assistant";
    },
    routeText(message) {
      const route = message.route;
      if (!route) return "";
      const what = ROUTE_NAMES[route.route] || route.route;
      if (route.forced) return `Answered as ${what}, as you asked`;
      return `Answered as ${what} · router ${Math.round(route.confidence * 100)} % sure`;
    },
    unsure(message) {
      const route = message.route;
      return Boolean(route) && !route.forced && !message.pending && (route.ambiguous || route.confidence < UNSURE_BELOW);
    },
    offers(message, route) {
      return this.unsure(message) && message.route.route !== route;
    },
    altOf(message) {
      return message.prompt || "Generated image";
    },
    diagramAlt(message) {
      return message.prompt ? `Diagram: ${message.prompt}` : "Diagram drawn from the PlantUML below";
    },

    async loadModels() {
      try {
        const page = await studio.get("/v1/models");
        this.models = page.data
          .filter((m) => m.family === "text" && m.kind !== "classifier")
          .map((m) => ({ id: m.id, label: m.name ? `${m.name} (${m.id})` : m.id }));
      } catch (error) {
        this.models = [];
      }
    },

    async loadConversations() {
      try {
        const page = await studio.get("/v1/conversations", { limit: 100 });
        this.conversations = page.data;
        this.listError = "";
      } catch (error) {
        this.listError = studio.messageOf(error);
      }
      this.loaded = true;
    },

    newConversation() {
      this.current = null;
      this.messages = [];
      this.error = "";
      this.renaming = false;
      this.confirmingDelete = false;
      history.replaceState(null, "", window.location.pathname);
      this.$nextTick(() => document.getElementById("chat-input").focus());
    },

    async open(conversation) {
      this.current = conversation;
      this.renaming = false;
      this.confirmingDelete = false;
      this.error = "";
      history.replaceState(null, "", `#${encodeURIComponent(conversation.id)}`);
      const items = [];
      try {
        let after = null;
        for (;;) {
          const query = { order: "asc", limit: 100, after };
          const page = await studio.get(`/v1/conversations/${encodeURIComponent(conversation.id)}/items`, query);
          items.push(...page.data);
          if (!page.has_more || page.data.length === 0) break;
          after = page.data[page.data.length - 1].id;
        }
      } catch (error) {
        this.error = studio.messageOf(error);
        return;
      }
      let prompt = "";
      this.messages = items.map((item) => {
        if (item.role === "user") prompt = item.content;
        return view(item, item.role === "assistant" ? prompt : "");
      });
    },

    async keep(items) {
      const path = `/v1/conversations/${encodeURIComponent(this.current.id)}/items`;
      const saved = await studio.post(path, { items });
      this.current.item_count += saved.data.length;
      return saved.data;
    },

    async send() {
      const text = this.draft.trim();
      if (!text || this.busy) return;
      this.error = "";
      this.busy = true;
      try {
        if (!this.current) {
          const made = await studio.post("/v1/conversations", { title: text.slice(0, 80) });
          this.conversations.unshift(made);
          this.current = this.conversations[0];
          history.replaceState(null, "", `#${encodeURIComponent(made.id)}`);
        }
        const [saved] = await this.keep([{ role: "user", content: text }]);
        this.messages.push(view(saved));
        this.draft = "";
        await this.answer(this.messages.length, text, null);
      } catch (error) {
        this.error = studio.messageOf(error);
      } finally {
        this.busy = false;
      }
    },

    /** "Answer as … instead": the same question again, with the route chosen by the person. */
    async answerAs(message, route) {
      if (this.busy) return;
      this.busy = true;
      this.error = "";
      try {
        await this.answer(this.messages.indexOf(message), message.prompt, route);
      } finally {
        this.busy = false;
      }
    },

    /** Streams the answer to the messages before `upTo` and keeps it in the conversation. */
    async answer(upTo, prompt, forcedRoute) {
      const history = this.messages
        .slice(0, upTo)
        .filter((m) => !m.error && m.content)
        .slice(-HISTORY)
        .map((m) => ({ role: m.role, content: m.content }));
      const auto = this.model === "auto";
      const body = { model: this.model, messages: history, stream: true, max_tokens: MAX_TOKENS };
      if (auto && forcedRoute) body.route = forcedRoute;
      this.messages.push(view({ role: "assistant" }, prompt));
      const reply = this.messages[this.messages.length - 1]; // the reactive copy: changes show as they stream
      reply.pending = true;
      let content = "";
      let attachments = [];
      let route = null;
      let model = this.model;
      try {
        await studio.streamPost("/v1/chat/completions", body, ({ data }) => {
          if (data === "[DONE]") return false;
          const chunk = JSON.parse(data);
          if (chunk.error) throw new studio.ApiError(500, chunk.error.message || "the answer failed");
          if (chunk.route) reply.route = route = routeOf(chunk.route, Boolean(forcedRoute));
          if (chunk.model) model = chunk.model;
          for (const choice of chunk.choices || []) {
            if (choice.delta && choice.delta.content) {
              content += choice.delta.content;
              reply.text = content;
            }
            if (choice.delta && choice.delta.attachments) attachments = choice.delta.attachments;
          }
          return true;
        });
      } catch (error) {
        reply.pending = false;
        reply.error = studio.messageOf(error) || "The answer stopped.";
        return;
      }
      Object.assign(reply, view({ role: "assistant", content, model, route, attachments }, prompt), {
        key: reply.key,
      });
      try {
        const kept = attachments.map(({ type, id, plantuml }) => ({ type, id, plantuml }));
        const [saved] = await this.keep([{ role: "assistant", content, model, route, attachments: kept }]);
        reply.id = saved.id;
      } catch (error) {
        reply.status = "";
        reply.error = `Not saved: ${studio.messageOf(error)}`;
      }
    },

    /** Draws a diagram answer's PlantUML, as the person edited it, and keeps the drawing as a new answer. */
    async draw(message) {
      message.drawError = "";
      try {
        const made = await studio.post("/v1/diagrams/render", { plantuml: message.draft, format: "png" });
        if (!made.valid || !made.url) {
          const first = (made.errors || [])[0];
          message.drawError = first ? `PlantUML: ${first.message}` : "PlantUML could not draw this.";
          return;
        }
        const attachment = { type: "diagram", id: made.id, plantuml: message.draft };
        const content = `\`\`\`plantuml\n${message.draft}\n\`\`\``;
        const [saved] = await this.keep([{ role: "assistant", content, attachments: [attachment] }]);
        this.messages.push(view(saved, message.prompt));
      } catch (error) {
        message.drawError = studio.messageOf(error);
      }
    },

    async copy(message) {
      try {
        await navigator.clipboard.writeText(message.plantuml);
        message.status = "PlantUML copied.";
      } catch {
        message.status = "Copying is not allowed here: select the text and copy it.";
      }
    },

    async downloadPng(message) {
      message.drawError = "";
      try {
        await studio.download(message.diagram.url, "diagram.png");
      } catch (error) {
        message.drawError = studio.messageOf(error);
      }
    },

    async downloadSvg(message) {
      message.drawError = "";
      try {
        const made = await studio.post("/v1/diagrams/render", { plantuml: message.plantuml, format: "svg" });
        await studio.download(made.url, "diagram.svg");
      } catch (error) {
        message.drawError = studio.messageOf(error);
      }
    },

    startRename() {
      this.titleDraft = this.current.title;
      this.titleError = "";
      this.renaming = true;
      this.$nextTick(() => document.getElementById("conversation-title").focus());
    },
    cancelRename() {
      this.renaming = false;
    },
    async saveRename() {
      this.titleError = "";
      try {
        const path = `/v1/conversations/${encodeURIComponent(this.current.id)}`;
        const saved = await studio.post(path, { title: this.titleDraft });
        this.current.title = saved.title;
        this.renaming = false;
      } catch (error) {
        this.titleError = studio.messageOf(error);
      }
    },

    askDelete() {
      this.confirmingDelete = true;
    },
    keepConversation() {
      this.confirmingDelete = false;
    },
    async remove() {
      this.error = "";
      try {
        await studio.del(`/v1/conversations/${encodeURIComponent(this.current.id)}`);
        const gone = this.current.id;
        this.conversations = this.conversations.filter((c) => c.id !== gone);
        this.newConversation();
      } catch (error) {
        this.error = studio.messageOf(error);
      }
    },

    onKeydown(event) {
      // Enter sends, Shift+Enter starts a new line (as in other chat windows).
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    },
  }));
});
