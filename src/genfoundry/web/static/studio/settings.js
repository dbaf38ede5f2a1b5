// Settings: the API key this tab uses, and (for admins) creating and revoking keys.
"use strict";
document.addEventListener("alpine:init", () => {
  const { studio } = window;

  window.Alpine.data("apiKeySettings", () => ({
    draft: "",
    hasKey: false,
    singleUser: false,
    status: "",
    error: "",
    async init() {
      this.hasKey = Boolean(studio.key());
      await this.check();
    },
    async check() {
      try {
        await studio.get("/v1/models");
        this.singleUser = !studio.key();
        this.status = studio.key() ? "Key accepted." : "";
        this.error = "";
      } catch (error) {
        this.singleUser = false;
        this.status = "";
        const missing = error.status === 401 && !studio.key();
        this.error = missing ? "This server needs a key: paste one above." : studio.messageOf(error);
      }
    },
    async save() {
      studio.setKey(this.draft);
      this.draft = "";
      this.hasKey = Boolean(studio.key());
      await this.check();
      window.dispatchEvent(new CustomEvent("studio:key-changed"));
    },
    async forget() {
      studio.setKey("");
      this.hasKey = false;
      await this.check();
      window.dispatchEvent(new CustomEvent("studio:key-changed"));
    },
  }));

  window.Alpine.data("keyAdmin", () => ({
    keys: [],
    allowed: false,
    forbidden: false,
    name: "",
    admin: false,
    created: "",
    firstKey: false,
    error: "",
    when: studio.when,
    init() {
      this.load();
      window.addEventListener("studio:key-changed", () => this.load());
    },
    async load() {
      try {
        const page = await studio.get("/v1/keys");
        this.keys = page.data;
        this.allowed = true;
        this.forbidden = false;
      } catch (error) {
        this.keys = [];
        this.allowed = false;
        this.forbidden = error.status === 403 || error.status === 401;
        if (!this.forbidden) this.error = studio.messageOf(error);
      }
    },
    async create() {
      this.error = "";
      try {
        const hadKeys = this.keys.length > 0;
        const made = await studio.post("/v1/keys", { name: this.name, admin: this.admin });
        this.created = made.key;
        this.firstKey = !hadKeys;
        if (!hadKeys && !studio.key()) studio.setKey(made.key);
        this.name = "";
        this.admin = false;
        await this.load();
      } catch (error) {
        this.error = studio.messageOf(error);
      }
    },
    async revoke(item) {
      this.error = "";
      try {
        await studio.post(`/v1/keys/${encodeURIComponent(item.id)}/revoke`, {});
        await this.load();
      } catch (error) {
        this.error = studio.messageOf(error);
      }
    },
  }));
});
