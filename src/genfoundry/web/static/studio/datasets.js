// Datasets: the list of the user's datasets, and creating one from a ZIP (upload with progress, then the per-file
// report) or from image URLs (a download job whose per-URL results arrive over the job's event stream).
"use strict";
document.addEventListener("alpine:init", () => {
  const { studio } = window;
  const changed = () => window.dispatchEvent(new CustomEvent("studio:datasets-changed"));
  const STATUS_WORDS = { ok: "accepted", rejected: "rejected", duplicate: "duplicate", skipped: "skipped" };

  /** "3 accepted · 1 rejected · 1 duplicate" for a report's or a dataset's counts. */
  const countsText = (counts) => {
    const parts = [`${counts.accepted || 0} accepted`, `${counts.rejected || 0} rejected`];
    parts.push(`${counts.duplicates || 0} duplicate${counts.duplicates === 1 ? "" : "s"}`);
    if (counts.skipped) parts.push(`${counts.skipped} skipped`);
    return parts.join(" · ");
  };

  /** What the report or a URL's result says about one file: its reason, or the file it duplicates. */
  const detailOf = (entry) => {
    if (entry.reason) return entry.reason;
    if (entry.duplicate_of) return `same image as ${entry.duplicate_of}`;
    return "";
  };

  window.Alpine.data("zipUpload", () => ({
    name: "",
    triggerWord: "",
    file: null,
    fileName: "",
    over: false,
    busy: false,
    progress: 0,
    error: "",
    report: null,
    created: null,
    pick(event) {
      this.choose(event.target.files && event.target.files[0]);
    },
    drop(event) {
      this.over = false;
      this.choose(event.dataTransfer.files && event.dataTransfer.files[0]);
    },
    dragOver() {
      this.over = true;
    },
    dragLeave() {
      this.over = false;
    },
    choose(file) {
      this.file = file || null;
      this.fileName = file ? file.name : "";
      if (file && !this.name) this.name = file.name.replace(/\.zip$/i, "");
      this.error = "";
    },
    get progressText() {
      return `${Math.round(this.progress * 100)} %`;
    },
    get reportItems() {
      return this.report ? this.report.items : [];
    },
    get reportTitle() {
      return this.created ? "Uploaded:" : "Nothing kept:";
    },
    get reportCounts() {
      return this.report ? countsText(this.report) : "";
    },
    get createdLink() {
      return this.created ? `/datasets/${encodeURIComponent(this.created.id)}` : "#";
    },
    statusWord(entry) {
      return STATUS_WORDS[entry.status] || entry.status;
    },
    badgeClass(entry) {
      return entry.status === "ok" ? "badge ok" : entry.status === "rejected" ? "badge bad" : "badge";
    },
    detail: detailOf,
    async submit() {
      this.error = "";
      if (!this.file) {
        this.error = "Choose a ZIP file first.";
        return;
      }
      const form = new FormData();
      form.append("file", this.file, this.file.name);
      form.append("name", this.name);
      if (this.triggerWord.trim()) form.append("trigger_word", this.triggerWord.trim());
      this.busy = true;
      this.progress = 0;
      this.report = null;
      this.created = null;
      try {
        const made = await studio.upload("/v1/datasets", form, {
          onProgress: (fraction) => {
            this.progress = fraction;
          },
        });
        this.progress = 1;
        this.report = made.report;
        this.created = made;
        changed();
      } catch (error) {
        this.error = studio.messageOf(error);
        // Nothing in the ZIP was usable: the API's error carries the report, so each file's reason is shown.
        if (error.details && Array.isArray(error.details.items)) this.report = error.details;
      } finally {
        this.busy = false;
      }
    },
  }));

  window.Alpine.data("urlImport", () => ({
    name: "",
    triggerWord: "",
    urlText: "",
    busy: false,
    error: "",
    results: [],
    dataset: null,
    jobStatus: "",
    stream: null,
    get datasetLink() {
      return this.dataset ? `/datasets/${encodeURIComponent(this.dataset.id)}` : "#";
    },
    get doneText() {
      const done = this.results.filter((row) => row.status !== "pending").length;
      return `${done} of ${this.results.length} URLs fetched`;
    },
    statusWord(row) {
      return row.status === "pending" ? "waiting" : STATUS_WORDS[row.status] || row.status;
    },
    badgeClass(row) {
      return row.status === "ok" ? "badge ok" : row.status === "rejected" ? "badge bad" : "badge";
    },
    detail: detailOf,
    async submit() {
      this.error = "";
      const urls = this.urlText
        .split("\n")
        .map((line) => line.trim())
        .filter(Boolean);
      if (!urls.length) {
        this.error = "List at least one image URL, one per line.";
        return;
      }
      if (this.stream) this.stream.close();
      this.busy = true;
      this.results = urls.map((url) => ({ url, status: "pending", reason: null, duplicate_of: null }));
      try {
        const body = { name: this.name, urls };
        if (this.triggerWord.trim()) body.trigger_word = this.triggerWord.trim();
        this.dataset = await studio.post("/v1/datasets/from-urls", body);
        this.jobStatus = "running";
        changed();
        this.stream = studio.follow(`/v1/jobs/${encodeURIComponent(this.dataset.job_id)}/events`, (event) => this.onEvent(event), {
          onDone: () => this.finish(),
          onError: (error) => {
            if (error instanceof studio.ApiError && error.status < 500) {
              this.error = studio.messageOf(error);
              this.busy = false;
            }
          },
        });
      } catch (error) {
        this.results = [];
        this.error = studio.messageOf(error);
        this.busy = false;
      }
    },
    onEvent(event) {
      if (event.type === "url") {
        const row = this.results.find((each) => each.url === event.data.url && each.status === "pending");
        if (row) {
          row.status = event.data.status;
          row.reason = event.data.reason;
        }
      } else if (event.type === "status") {
        this.jobStatus = event.message;
      }
    },
    async finish() {
      // Duplicates are settled once every download is in: the items say which URL each copy repeats.
      try {
        this.dataset = await studio.get(`/v1/datasets/${encodeURIComponent(this.dataset.id)}`);
        const page = await studio.get(`/v1/datasets/${encodeURIComponent(this.dataset.id)}/items`, { limit: 1000 });
        for (const item of page.data) {
          const row = this.results.find((each) => each.url === item.source);
          if (row) Object.assign(row, { status: item.status, reason: item.reason, duplicate_of: item.duplicate_of });
        }
        if (this.dataset.error) this.error = this.dataset.error;
      } catch (error) {
        this.error = studio.messageOf(error);
      } finally {
        this.busy = false;
        changed();
      }
    },
    destroy() {
      if (this.stream) this.stream.close();
    },
  }));

  window.Alpine.data("datasetList", () => ({
    datasets: [],
    hasMore: false,
    loaded: false,
    error: "",
    when: studio.when,
    init() {
      this.load();
      window.addEventListener("studio:datasets-changed", () => this.load());
      window.addEventListener("studio:key-changed", () => this.load());
    },
    async load(more = false) {
      this.error = "";
      try {
        const after = more && this.datasets.length ? this.datasets[this.datasets.length - 1].id : undefined;
        const page = await studio.get("/v1/datasets", { limit: 50, after });
        this.datasets = more ? this.datasets.concat(page.data) : page.data;
        this.hasMore = page.has_more;
      } catch (error) {
        this.error = studio.messageOf(error);
      } finally {
        this.loaded = true;
      }
    },
    loadMore() {
      return this.load(true);
    },
    get isEmpty() {
      return this.loaded && !this.error && this.datasets.length === 0;
    },
    link(dataset) {
      return `/datasets/${encodeURIComponent(dataset.id)}`;
    },
    size(dataset) {
      if (dataset.kind === "text") return `${dataset.stats.examples || 0} examples`;
      return `${dataset.stats.accepted || 0} images`;
    },
    captioned(dataset) {
      if (dataset.kind === "text") return "—";
      return `${Math.round((dataset.stats.caption_coverage || 0) * 100)} %`;
    },
  }));
});
