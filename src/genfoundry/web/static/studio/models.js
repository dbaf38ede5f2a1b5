// Models: the bases (and whether their weights are here), the user's adapters (import with progress, rename and
// retag, export, delete), their trained models and classifiers. Everything through /v1/models.
"use strict";
document.addEventListener("alpine:init", () => {
  const { studio } = window;
  const IMPORT_FIELDS = { file: "fileError", base: "baseError", name: "nameError", tags: "tagsError" };
  const modelPath = (id) => `/v1/models/${encodeURIComponent(id)}`;

  window.Alpine.data("modelsPage", () => ({
    loaded: false,
    loadError: "",
    bases: [],
    imageBases: [],
    adapters: [],
    trained: [],
    classifiers: [],
    // import
    file: null,
    fileName: "",
    over: false,
    base: "",
    name: "",
    triggerWord: "",
    industry: "",
    style: "",
    busy: false,
    progress: 0,
    fileError: "",
    baseError: "",
    nameError: "",
    tagsError: "",
    importError: "",
    imported: "",
    // edit and delete
    editing: null,
    draft: { name: "", trigger_word: "", industry: "", style: "" },
    editError: "",
    confirming: null,
    actionError: "", // an export's or delete's error, shown with the model it was for (failedId)
    failedId: null,

    init() {
      this.load();
      window.addEventListener("studio:key-changed", () => this.load());
    },

    async load() {
      try {
        const page = await studio.get("/v1/models");
        const models = page.data;
        this.bases = models.filter((m) => m.kind === "base" && m.owned_by === "genfoundry");
        this.trained = models.filter((m) => m.kind === "base" && m.owned_by !== "genfoundry");
        this.imageBases = this.bases.filter((m) => m.family !== "text");
        this.adapters = models.filter((m) => m.kind === "adapter").reverse(); // newest first
        this.classifiers = models.filter((m) => m.kind === "classifier");
        if (!this.imageBases.some((m) => m.id === this.base)) {
          const usable = this.imageBases.find((m) => m.weights_present) || this.imageBases[0];
          this.base = usable ? usable.id : "";
        }
        this.loadError = "";
      } catch (error) {
        this.loadError = studio.messageOf(error);
      } finally {
        this.loaded = true;
      }
    },

    kindOf(item) {
      return item.family === "text" ? "text" : `image (${item.family})`;
    },
    labelsOf(item) {
      return (item.labels || []).join(", ");
    },
    tagList(item) {
      return Object.entries(item.tags || {}).map(([key, value]) => ({ key, value }));
    },
    failed(item) {
      return this.failedId === item.id && this.actionError !== "";
    },
    canExport(item) {
      return item.family !== "text";
    },

    // -- import -----------------------------------------------------------------------------------
    choose(file) {
      this.file = file || null;
      this.fileName = file ? file.name : "";
      this.fileError = file && !file.name.toLowerCase().endsWith(".safetensors") ? "Choose a .safetensors file." : "";
    },
    pick(event) {
      this.choose(event.target.files[0]);
    },
    dragOver() {
      this.over = true;
    },
    dragLeave() {
      this.over = false;
    },
    drop(event) {
      this.over = false;
      this.choose(event.dataTransfer.files[0]);
    },
    tagsText(industry, style) {
      const parts = [];
      for (const [key, value] of [["industry", industry], ["style", style]]) {
        const text = (value || "").trim();
        if (!text) continue;
        if (text.includes(",")) throw new Error(`The ${key} cannot contain a comma.`);
        parts.push(`${key}=${text}`);
      }
      return parts.join(",");
    },
    clearImportErrors() {
      for (const field of Object.values(IMPORT_FIELDS)) this[field] = "";
      this.importError = "";
      this.imported = "";
    },
    async importAdapter() {
      this.clearImportErrors();
      if (!this.file) {
        this.fileError = "Choose or drop a .safetensors file first.";
        return;
      }
      let tags;
      try {
        tags = this.tagsText(this.industry, this.style);
      } catch (error) {
        this.tagsError = error.message;
        return;
      }
      const form = new FormData();
      form.append("file", this.file, this.file.name);
      form.append("base", this.base);
      form.append("name", this.name);
      if (this.triggerWord.trim()) form.append("trigger_word", this.triggerWord.trim());
      if (tags) form.append("tags", tags);
      this.busy = true;
      this.progress = 0;
      try {
        const made = await studio.upload("/v1/models", form, { onProgress: (fraction) => (this.progress = fraction) });
        this.imported = `Imported ${made.name || made.id}.`;
        this.file = null;
        this.fileName = "";
        this.name = "";
        this.triggerWord = "";
        this.industry = "";
        this.style = "";
        this.$root.querySelector("#lora-file").value = "";
        await this.load();
      } catch (error) {
        const field = IMPORT_FIELDS[error.param];
        if (field) this[field] = studio.messageOf(error);
        else this.importError = studio.messageOf(error);
      } finally {
        this.busy = false;
      }
    },

    // -- edit, export, delete ---------------------------------------------------------------------
    startEdit(item) {
      const tags = item.tags || {};
      this.draft = {
        name: item.name || "",
        trigger_word: item.trigger_word || "",
        industry: tags.industry || "",
        style: tags.style || "",
      };
      this.editError = "";
      this.confirming = null;
      this.editing = item.id;
    },
    cancelEdit() {
      this.editing = null;
      this.editError = "";
    },
    async saveEdit(item) {
      this.editError = "";
      const tags = { ...(item.tags || {}) };
      for (const key of ["industry", "style"]) {
        const value = (this.draft[key] || "").trim();
        if (value) tags[key] = value;
        else delete tags[key];
      }
      try {
        await studio.patch(modelPath(item.id), {
          name: this.draft.name,
          trigger_word: this.draft.trigger_word.trim() || null,
          tags,
        });
        this.editing = null;
        await this.load();
      } catch (error) {
        this.editError = studio.messageOf(error);
      }
    },
    async exportAdapter(item, format) {
      this.actionError = "";
      this.failedId = null;
      try {
        await studio.download(`${modelPath(item.id)}/content?format=${format}`, `${item.id}-${format}.safetensors`);
      } catch (error) {
        this.failedId = item.id;
        this.actionError = studio.messageOf(error);
      }
    },
    focusFirstField(form) {
      const field = form.querySelector("input");
      if (field) field.focus();
    },
    askDelete(item) {
      this.editing = null;
      this.confirming = item.id;
      // The Delete button hides; keyboard focus moves to the confirmation instead of being lost.
      this.$nextTick(() => {
        const confirm = document.getElementById(`confirm-delete-${item.id}`);
        if (confirm) confirm.focus();
      });
    },
    cancelDelete() {
      this.confirming = null;
    },
    async remove(item) {
      this.actionError = "";
      this.failedId = null;
      try {
        await studio.del(modelPath(item.id));
        this.confirming = null;
        await this.load();
      } catch (error) {
        this.failedId = item.id;
        this.actionError = studio.messageOf(error);
      }
    },
  }));
});
