// One dataset: its stats, its images with captions edited in place (saved when a field loses focus), bulk caption
// edits (one request: POST /v1/datasets/{id}/captions), a captioning job whose captions fill in live from the job's
// event stream, the kohya config download, and deletion.
"use strict";
document.addEventListener("alpine:init", () => {
  const { studio } = window;
  const PAGE = 1000; // the API's largest page of items

  window.Alpine.data("datasetDetail", () => ({
    id: "",
    dataset: null,
    items: [],
    others: [],
    notFound: false,
    error: "",
    // bulk edits
    find: "",
    replaceWith: "",
    prependText: "",
    bulkStatus: "",
    bulkError: "",
    downloadStatus: "",
    // captioning
    captioner: "",
    overwrite: false,
    captionProgress: null,
    captionStatus: "",
    captionError: "",
    stream: null,
    // config and deletion
    resolution: "auto", // the server picks the largest size most images reach (the file's comment says which)
    configError: "",
    deleteError: "",
    deleting: false,

    init() {
      this.id = this.$el.dataset.datasetId;
      this.load();
    },
    destroy() {
      if (this.stream) this.stream.close();
      for (const item of this.items) if (item.url) URL.revokeObjectURL(item.url);
    },
    base() {
      return `/v1/datasets/${encodeURIComponent(this.id)}`;
    },

    async load() {
      this.error = "";
      try {
        this.dataset = await studio.get(this.base());
        if (this.dataset.trigger_word && !this.prependText) this.prependText = this.dataset.trigger_word;
      } catch (error) {
        this.notFound = error instanceof studio.ApiError && error.status === 404;
        this.error = this.notFound ? "" : studio.messageOf(error);
        return;
      }
      await this.loadItems();
      if (this.dataset.status === "captioning" && this.dataset.job_id) this.followCaptioning(this.dataset.job_id);
      if (this.dataset.status === "processing" && this.dataset.job_id) this.followDownload(this.dataset.job_id);
    },
    followDownload(jobId) {
      // Images from URLs are still coming: show each URL's result, then the dataset as it ended up.
      if (this.stream) this.stream.close();
      this.downloadStatus = "Downloading images…";
      this.stream = studio.follow(`/v1/jobs/${encodeURIComponent(jobId)}/events`, (event) => {
        if (event.type === "url") this.downloadStatus = event.message;
      }, {
        onDone: () => {
          this.stream = null;
          this.downloadStatus = "";
          this.load();
        },
      });
    },
    async loadItems() {
      const all = [];
      let after;
      try {
        for (;;) {
          const page = await studio.get(`${this.base()}/items`, { limit: PAGE, after });
          all.push(...page.data);
          if (!page.has_more || !page.data.length) break;
          after = page.data[page.data.length - 1].id;
        }
      } catch (error) {
        this.error = studio.messageOf(error);
        return;
      }
      for (const item of this.items) if (item.url) URL.revokeObjectURL(item.url);
      this.items = all
        .filter((item) => item.status === "ok")
        .map((item) => ({ ...item, url: "", saving: false, saved: false, error: "" }));
      this.others = all.filter((item) => item.status !== "ok");
      for (const item of this.items) this.loadImage(item);
    },
    async loadImage(item) {
      try {
        const url = await studio.blobUrl(`${this.base()}/items/${encodeURIComponent(item.id)}/image`);
        const current = this.items.find((each) => each.id === item.id);
        if (current) current.url = url;
        else URL.revokeObjectURL(url);
      } catch (error) {
        const current = this.items.find((each) => each.id === item.id);
        if (current) current.error = studio.messageOf(error);
      }
    },
    async refresh() {
      try {
        this.dataset = await studio.get(this.base());
      } catch (error) {
        this.error = studio.messageOf(error);
      }
    },

    // -- what the page shows ---------------------------------------------------------------------------------------
    get title() {
      if (this.notFound) return "Dataset not found";
      return this.dataset ? this.dataset.name : "Dataset";
    },
    get ready() {
      return Boolean(this.dataset) && this.dataset.status === "ready";
    },
    get trainLink() {
      if (!this.dataset) return "/training";
      const method = this.dataset.kind === "image" ? "lora" : "supervised";
      return `/training?method=${method}&dataset=${encodeURIComponent(this.dataset.id)}`;
    },
    get isImage() {
      return Boolean(this.dataset) && this.dataset.kind === "image";
    },
    get busy() {
      return Boolean(this.dataset) && this.dataset.status !== "ready";
    },
    get stats() {
      return this.dataset ? this.dataset.stats : {};
    },
    get statRows() {
      const s = this.stats;
      if (!this.dataset) return [];
      if (this.dataset.kind === "text") {
        return [
          ["Examples", String(s.examples || 0)],
          ["Format", s.format || ""],
          ["Size", this.bytes(s.total_bytes)],
        ];
      }
      const histogram = Object.entries(s.resolution_histogram || {})
        .map(([bucket, count]) => `${bucket} px: ${count}`)
        .join(", ");
      return [
        ["Images", String(s.accepted || 0)],
        ["Captioned", `${s.captioned || 0} (${Math.round((s.caption_coverage || 0) * 100)} %)`],
        ["Rejected", String(s.rejected || 0)],
        ["Duplicates", String(s.duplicates || 0)],
        ["Size", this.bytes(s.total_bytes)],
        ["Longest side", histogram || "—"],
        ["Trigger word", this.dataset.trigger_word || "—"],
      ];
    },
    bytes(n) {
      if (!n) return "0 B";
      if (n < 1024) return `${n} B`;
      if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
      return `${(n / 1024 / 1024).toFixed(1)} MiB`;
    },
    altOf(item) {
      return item.caption || `Image ${item.source} (no caption yet)`;
    },
    fieldId(item) {
      return `caption-${item.id}`;
    },
    statusText(item) {
      if (item.saving) return "Saving…";
      return item.saved ? "Saved" : "";
    },
    otherWhy(item) {
      if (item.reason) return item.reason;
      return item.duplicate_of ? `same image as ${item.duplicate_of}` : "";
    },
    get captionPercent() {
      if (!this.captionProgress || !this.captionProgress.total) return 0;
      return this.captionProgress.step / this.captionProgress.total;
    },

    // -- captions, one at a time ------------------------------------------------------------------------------------
    async saveCaption(item, event) {
      const text = event.target.value.trim();
      if (text === (item.caption || "")) return;
      item.saving = true;
      item.saved = false;
      item.error = "";
      try {
        const updated = await studio.patch(`${this.base()}/items/${encodeURIComponent(item.id)}`, { caption: text });
        item.caption = updated.caption;
        event.target.value = updated.caption || "";
        item.saved = true;
        await this.refresh();
      } catch (error) {
        item.error = studio.messageOf(error);
      } finally {
        item.saving = false;
      }
    },

    // -- captions, all at once --------------------------------------------------------------------------------------
    async bulk(body) {
      this.bulkStatus = "";
      this.bulkError = "";
      try {
        const result = await studio.post(`${this.base()}/captions`, body);
        for (const changed of result.data) {
          const item = this.items.find((each) => each.id === changed.id);
          if (item) {
            item.caption = changed.caption;
            item.saved = false;
          }
        }
        this.bulkStatus = `${result.updated} caption${result.updated === 1 ? "" : "s"} changed.`;
        await this.refresh();
      } catch (error) {
        this.bulkError = studio.messageOf(error);
      }
    },
    replaceAll() {
      return this.bulk({ operation: "replace", find: this.find, replace: this.replaceWith });
    },
    prependAll() {
      return this.bulk({ operation: "prepend", text: this.prependText.trim() });
    },

    // -- captioning job ---------------------------------------------------------------------------------------------
    async startCaptioning() {
      this.captionError = "";
      this.captionStatus = "";
      const body = { overwrite: this.overwrite };
      if (this.captioner.trim()) body.model = this.captioner.trim();
      try {
        const job = await studio.post(`${this.base()}/caption`, body);
        this.dataset.status = "captioning";
        this.followCaptioning(job.id);
      } catch (error) {
        this.captionError = studio.messageOf(error);
      }
    },
    followCaptioning(jobId) {
      if (this.stream) this.stream.close();
      this.captionProgress = { step: 0, total: 0 };
      this.captionStatus = "Captioning…";
      this.stream = studio.follow(`/v1/jobs/${encodeURIComponent(jobId)}/events`, (event) => this.onJobEvent(event), {
        onDone: () => this.captioningEnded(jobId),
        onError: (error) => {
          if (error instanceof studio.ApiError && error.status < 500) this.captionError = studio.messageOf(error);
        },
      });
    },
    onJobEvent(event) {
      if (event.type === "captions") {
        for (const entry of event.data.items) {
          const item = this.items.find((each) => each.id === entry.id);
          if (item) item.caption = entry.caption;
        }
        this.captionStatus = event.message;
      } else if (event.type === "status") {
        this.captionStatus = `Captioning ${event.message}.`;
      }
    },
    async captioningEnded(jobId) {
      this.stream = null;
      try {
        const job = await studio.get(`/v1/jobs/${encodeURIComponent(jobId)}`);
        if (job.progress) this.captionProgress = job.progress;
        if (job.status === "succeeded") this.captionStatus = `Captioning done: ${job.result.captioned} captioned.`;
        else this.captionError = job.error || `Captioning ${job.status}.`;
      } catch (error) {
        this.captionError = studio.messageOf(error);
      }
      await this.refresh();
    },

    // -- config and deletion ----------------------------------------------------------------------------------------
    async downloadConfig() {
      this.configError = "";
      const query = new URLSearchParams({ format: "kohya" });
      if (this.resolution !== "auto") query.set("resolution", String(this.resolution));
      const name = (this.dataset.name || this.id).replace(/[^A-Za-z0-9._-]+/g, "_");
      try {
        await studio.download(`${this.base()}/config?${query}`, `${name}.toml`);
      } catch (error) {
        this.configError = studio.messageOf(error);
      }
    },
    askDelete() {
      this.deleteError = "";
      this.$refs.confirmDelete.showModal();
    },
    cancelDelete() {
      this.$refs.confirmDelete.close();
    },
    async confirmDelete() {
      this.deleting = true;
      try {
        await studio.del(this.base());
        window.location.assign("/datasets");
      } catch (error) {
        this.deleteError = studio.messageOf(error);
        this.deleting = false;
      }
    },
  }));
});
