// Generate: the form for /v1/images/generations (and /v1/images/edits when a starting image is chosen), and the
// results as each image finishes; text to image is streamed, so previews of the image show while it denoises. The gallery hands over a re-run or a starting image through sessionStorage.
"use strict";
document.addEventListener("alpine:init", () => {
  const { studio } = window;
  const RERUN_KEY = "genfoundry.generate.rerun";
  const INIT_IMAGE_KEY = "genfoundry.generate.initImage";
  const SIZES = ["64x64", "256x256", "512x512", "512x768", "768x512", "768x768", "1024x1024", "1024x768", "768x1024"];
  const FIELDS = [
    "prompt",
    "negative_prompt",
    "model",
    "loras",
    "style",
    "industry",
    "size",
    "steps",
    "guidance_scale",
    "seed",
    "n",
    "image",
    "strength",
  ];
  const MAX_SEED = 4294967295;
  const PREVIEWS = 2; // partial images per streamed request (docs/images.md)
  // Text bases and classifiers are answered by other endpoints; the image families are these.
  const IMAGE_FAMILIES = new Set(["sd15", "sdxl", "flux"]);

  /** The form field an API error belongs to: its `param` ("loras.0.weight" → "loras"), else the form itself. */
  const fieldOf = (error) => {
    const parts = String((error && error.param) || "").split(".");
    return parts.find((part) => FIELDS.includes(part)) || "form";
  };

  const emptyForm = () => ({
    prompt: "",
    negative_prompt: "",
    model: "",
    loras: [],
    style: "",
    industry: "",
    size: "",
    steps: "",
    guidance_scale: "",
    seed: "",
    randomSeed: true,
    n: 1,
    strength: 0.6,
  });

  window.Alpine.data("generator", () => ({
    form: emptyForm(),
    models: [],
    styles: [],
    sizes: SIZES,
    results: [],
    errors: {},
    busy: false,
    progress: "",
    preview: "", // a data: URL of the newest partial image while one is being made
    initImage: null, // { file, url (an object URL for the preview), name }
    dragging: false,
    picking: false,
    recent: [],
    recentError: "",
    nextLoraKey: 1,

    async init() {
      await Promise.all([this.loadModels(), this.loadStyles()]);
      this.takeHandover();
    },

    async loadModels() {
      try {
        const page = await studio.get("/v1/models");
        this.models = page.data.filter((m) => IMAGE_FAMILIES.has(m.family) && m.kind !== "classifier");
        // A training run's page links here with the model it made.
        const wanted = new URLSearchParams(window.location.search).get("model");
        if (wanted && this.models.some((m) => m.id === wanted)) this.form.model = wanted;
        if (!this.form.model) {
          // the first base whose weights are on this machine (the field is absent on older servers)
          const ready = this.models.find((m) => m.kind === "base" && m.weights_present !== false);
          this.form.model = ready ? ready.id : "";
        }
      } catch (error) {
        this.errors = { ...this.errors, model: studio.messageOf(error) };
      }
    },

    async loadStyles() {
      try {
        this.styles = (await studio.get("/v1/images/styles")).data;
      } catch (error) {
        this.errors = { ...this.errors, style: studio.messageOf(error) };
      }
    },

    get adapters() {
      return this.models.filter((m) => m.kind === "adapter");
    },

    get industries() {
      const found = new Set(this.adapters.map((m) => (m.tags || {}).industry).filter(Boolean));
      return [...found].sort();
    },

    modelLabel(model) {
      if (model.kind === "adapter") {
        const named = model.name ? `${model.name} · ` : "";
        return `${named}adapter on ${model.base}` + (model.trigger_word ? ` · trigger word ${model.trigger_word}` : "");
      }
      return model.description ? `${model.family} · ${model.description}` : model.family;
    },

    addLora() {
      this.form.loras.push({ key: this.nextLoraKey++, id: "", weight: 1 });
    },
    removeLora(index) {
      this.form.loras.splice(index, 1);
    },
    loraLabel(index) {
      return `Adapter ${index + 1}`;
    },
    weightLabel(index) {
      return `Weight of adapter ${index + 1}`;
    },
    removeLoraLabel(index) {
      return `Remove adapter ${index + 1}`;
    },

    // -- the starting image (image to image) --------------------------------------------------------------

    setInitImage(file, name) {
      this.clearInitImage();
      this.initImage = { file, url: URL.createObjectURL(file), name: name || file.name || "image" };
      this.errors = { ...this.errors, image: "" };
    },
    clearInitImage() {
      if (this.initImage) URL.revokeObjectURL(this.initImage.url);
      this.initImage = null;
    },
    chooseFile(event) {
      const [file] = event.target.files || [];
      if (file) this.setInitImage(file);
      event.target.value = "";
    },
    dragOver() {
      this.dragging = true;
    },
    dragLeave() {
      this.dragging = false;
    },
    drop(event) {
      this.dragging = false;
      const [file] = (event.dataTransfer && event.dataTransfer.files) || [];
      if (!file) return;
      if (!file.type.startsWith("image/")) {
        this.errors = { ...this.errors, image: "Drop a PNG, JPEG or WebP image." };
        return;
      }
      this.setInitImage(file);
    },
    async useGenerated(item) {
      try {
        const response = await fetch(item.url);
        if (!response.ok) throw new studio.ApiError(response.status, "The image could not be loaded.");
        const blob = await response.blob();
        this.setInitImage(new File([blob], `${item.id}.png`, { type: blob.type || "image/png" }), item.prompt);
        this.$refs.imageSection?.scrollIntoView({ block: "nearest" });
      } catch (error) {
        this.errors = { ...this.errors, image: studio.messageOf(error) };
      }
    },
    async openPicker() {
      this.picking = !this.picking;
      if (!this.picking) return;
      this.recentError = "";
      try {
        this.recent = (await studio.get("/v1/generations", { limit: 24 })).data;
      } catch (error) {
        this.recentError = studio.messageOf(error);
      }
    },
    async pick(item) {
      this.picking = false;
      await this.useGenerated(item);
    },

    // -- hand-over from the gallery ----------------------------------------------------------------------

    takeHandover() {
      const rerun = sessionStorage.getItem(RERUN_KEY);
      sessionStorage.removeItem(RERUN_KEY);
      if (rerun) {
        try {
          this.fill(JSON.parse(rerun));
        } catch {
          // a damaged hand-over is ignored: the form stays empty
        }
      }
      const start = sessionStorage.getItem(INIT_IMAGE_KEY);
      sessionStorage.removeItem(INIT_IMAGE_KEY);
      if (start) {
        try {
          this.useGenerated(JSON.parse(start));
        } catch {
          // as above
        }
      }
    },

    /** The form from a generation's parameters (a gallery item). */
    fill(generation) {
      const params = generation.params || {};
      const form = emptyForm();
      form.prompt = generation.prompt || "";
      form.negative_prompt = this.askedNegative(generation.negative_prompt || "", params.style);
      form.model = generation.model || "";
      form.loras = (params.loras || [])
        .filter((lora) => lora.id !== generation.model)
        .map((lora) => ({ key: this.nextLoraKey++, id: lora.id, weight: lora.weight }));
      form.style = params.style || "";
      form.industry = params.industry || "";
      form.size = params.size || "";
      form.steps = params.steps ?? "";
      form.guidance_scale = params.guidance_scale ?? "";
      if (generation.seed !== undefined && generation.seed !== null) {
        form.seed = generation.seed;
        form.randomSeed = false;
      }
      if (params.strength) form.strength = params.strength;
      this.form = form;
    },

    /** The negative prompt the person typed: the recorded one less what the style appended to it. */
    askedNegative(recorded, styleName) {
      const style = this.styles.find((s) => s.id === styleName);
      const added = style ? style.negative_prompt : "";
      if (!added) return recorded;
      if (recorded === added) return "";
      return recorded.endsWith(`, ${added}`) ? recorded.slice(0, -(added.length + 2)) : recorded;
    },

    // -- generating ----------------------------------------------------------------------------------------

    /** The request's fields, as the API names them; `seed` for this one image. */
    fields(seed) {
      const f = this.form;
      const body = { prompt: f.prompt, model: f.model.trim(), n: 1 };
      if (f.negative_prompt.trim()) body.negative_prompt = f.negative_prompt;
      if (f.style) body.style = f.style;
      if (f.industry.trim()) body.industry = f.industry.trim();
      if (f.size.trim()) body.size = f.size.trim();
      if (f.steps !== "" && f.steps !== null) body.steps = Number(f.steps);
      if (f.guidance_scale !== "" && f.guidance_scale !== null) body.guidance_scale = Number(f.guidance_scale);
      if (seed !== null) body.seed = seed;
      const loras = f.loras.filter((lora) => lora.id.trim()).map((lora) => ({ id: lora.id.trim(), weight: Number(lora.weight) }));
      if (loras.length) body.loras = loras;
      return body;
    },

    /** Text to image as a stream: each partial image becomes the preview; answers what a plain request does. */
    async streamOne(body) {
      let completed = null;
      const streamed = { ...body, stream: true, partial_images: PREVIEWS };
      await studio.streamPost("/v1/images/generations", streamed, ({ event, data }) => {
        const parsed = JSON.parse(data);
        if (event === "error") {
          const error = parsed.error || {};
          throw new studio.ApiError(500, String(error.message || "The image could not be made."), error.param || null);
        }
        if (parsed.type === "image_generation.partial_image") {
          this.preview = `data:image/${parsed.output_format};base64,${parsed.b64_json}`;
        } else if (parsed.type === "image_generation.completed") {
          completed = parsed;
        }
        return undefined;
      });
      if (!completed) throw new studio.ApiError(500, "The stream ended without an image.");
      const row = await studio.get(`/v1/generations/${encodeURIComponent(completed.id)}`);
      const { id, url, seed, revised_prompt, generation_time_s } = row;
      return { data: [{ id, url, seed, revised_prompt, generation_time_s }] };
    },

    async requestOne(seed) {
      const body = this.fields(seed);
      if (!this.initImage) return this.streamOne(body);
      const form = new FormData();
      form.append("image", this.initImage.file, this.initImage.name.slice(0, 100) || "image.png");
      form.append("strength", String(this.form.strength));
      for (const [name, value] of Object.entries(body)) {
        form.append(name, name === "loras" ? JSON.stringify(value) : String(value));
      }
      return studio.request("/v1/images/edits", { method: "POST", form });
    },

    /** Asks for the images one at a time, so each appears as soon as it is done; stops at the first error. */
    async generate() {
      if (this.busy) return;
      this.errors = {};
      const count = Math.max(1, Math.min(8, Math.round(Number(this.form.n) || 1)));
      let first = null;
      if (!this.form.randomSeed) {
        if (this.form.seed === "" || this.form.seed === null) {
          this.errors = { seed: "Enter a seed, or tick “Random seed”." };
          return;
        }
        first = Number(this.form.seed);
      }
      const prompt = this.form.prompt;
      this.busy = true;
      try {
        for (let i = 0; i < count; i++) {
          this.progress = count > 1 ? `Generating image ${i + 1} of ${count}…` : "Generating…";
          const seed = first === null ? null : (first + i) % (MAX_SEED + 1);
          const answer = await this.requestOne(seed);
          for (const item of answer.data) {
            this.results.unshift({ ...item, prompt, favorite: false, error: "", edit: Boolean(this.initImage) });
          }
        }
        this.progress = "";
      } catch (error) {
        this.progress = "";
        this.errors = { [fieldOf(error)]: studio.messageOf(error) };
      } finally {
        this.busy = false;
        this.preview = "";
      }
    },

    useSeed(item) {
      this.form.seed = item.seed;
      this.form.randomSeed = false;
      this.$refs.seed?.focus();
    },

    async vary() {
      this.form.randomSeed = true;
      this.form.n = 1;
      await this.generate();
    },

    async toggleFavorite(item) {
      item.error = "";
      try {
        const updated = await studio.patch(`/v1/generations/${encodeURIComponent(item.id)}`, {
          favorite: !item.favorite,
        });
        item.favorite = updated.favorite;
      } catch (error) {
        item.error = studio.messageOf(error);
      }
    },

    seconds(value) {
      return Number.isFinite(value) ? `${value.toFixed(2)} s` : "";
    },
    filename(item) {
      return `${item.id}.png`;
    },
    seedText(item) {
      return `Seed ${item.seed}`;
    },
    star(item) {
      return item.favorite ? "★" : "☆";
    },
  }));
});
