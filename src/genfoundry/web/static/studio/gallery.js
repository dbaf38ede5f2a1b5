// Gallery: the user's generations from /v1/generations, newest first, loaded page by page as the list scrolls
// (the `after` cursor), with the API's filters; one image opens in a dialog to rate, give feedback, favorite,
// delete, re-run (Generate prefilled through sessionStorage) or start an image-to-image from it.
"use strict";
document.addEventListener("alpine:init", () => {
  const { studio } = window;
  const RERUN_KEY = "genfoundry.generate.rerun";
  const INIT_IMAGE_KEY = "genfoundry.generate.initImage";
  const PAGE_SIZE = 24;

  window.Alpine.data("gallery", () => ({
    items: [],
    hasMore: false,
    loading: false,
    loaded: false,
    error: "",
    filters: { favorite: false, model: "", adapter: "", min_rating: "", q: "" },
    models: [],
    selected: null,
    feedback: "",
    detailError: "",
    detailStatus: "",
    confirmingDelete: false,
    generation: 0, // bumped on each new filter, so a late page of an older query is dropped
    observer: null,
    when: studio.when,

    init() {
      this.loadModels();
      this.reload();
      this.observer = new IntersectionObserver((entries) => {
        if (entries.some((entry) => entry.isIntersecting)) this.loadMore();
      });
      this.observer.observe(this.$refs.sentinel);
    },

    async loadModels() {
      try {
        this.models = (await studio.get("/v1/models", { capability: "images" })).data;
      } catch {
        this.models = []; // the filters still work by typing; the list's own error shows below
      }
    },

    get adapters() {
      return this.models.filter((m) => m.kind === "adapter");
    },

    query() {
      const f = this.filters;
      return {
        limit: PAGE_SIZE,
        favorite: f.favorite ? "true" : "",
        model: f.model,
        adapter: f.adapter,
        min_rating: f.min_rating,
        q: f.q.trim(),
      };
    },

    async reload() {
      this.generation += 1;
      this.items = [];
      this.hasMore = false;
      this.loaded = false;
      this.loading = false;
      await this.loadMore(true);
    },

    async loadMore(first = false) {
      if (this.loading || (!first && !this.hasMore)) return;
      const generation = this.generation;
      this.loading = true;
      this.error = "";
      try {
        const after = this.items.length ? this.items[this.items.length - 1].id : "";
        const page = await studio.get("/v1/generations", { ...this.query(), after });
        if (generation !== this.generation) return;
        this.items.push(...page.data);
        this.hasMore = page.has_more;
        this.loaded = true;
      } catch (error) {
        if (generation === this.generation) this.error = studio.messageOf(error);
      } finally {
        if (generation === this.generation) this.loading = false;
      }
      // A short first page may not fill the screen: the sentinel stays visible and fires no new event.
      if (generation === this.generation && this.hasMore && this.sentinelVisible()) this.loadMore();
    },

    sentinelVisible() {
      const box = this.$refs.sentinel.getBoundingClientRect();
      return box.top < window.innerHeight;
    },

    get countText() {
      if (!this.loaded) return "";
      const n = this.items.length;
      return `${n}${this.hasMore ? "+" : ""} image${n === 1 ? "" : "s"}`;
    },

    // -- one image -----------------------------------------------------------------------------------------

    open(item) {
      this.selected = item;
      this.feedback = item.feedback || "";
      this.detailError = "";
      this.detailStatus = "";
      this.confirmingDelete = false;
      this.$refs.detail.showModal();
    },
    close() {
      this.$refs.detail.close();
    },
    closed() {
      this.selected = null;
    },

    async update(changes, done) {
      const item = this.selected;
      this.detailError = "";
      this.detailStatus = "";
      try {
        const updated = await studio.patch(`/v1/generations/${encodeURIComponent(item.id)}`, changes);
        Object.assign(item, { favorite: updated.favorite, rating: updated.rating, feedback: updated.feedback });
        this.detailStatus = done;
      } catch (error) {
        this.detailError = studio.messageOf(error);
      }
    },
    toggleFavorite() {
      return this.update({ favorite: !this.selected.favorite }, "Saved.");
    },
    rate(value) {
      return this.update({ rating: value }, `Rated ${value} of 5.`);
    },
    saveFeedback() {
      return this.update({ feedback: this.feedback }, "Feedback saved.");
    },

    async remove() {
      const item = this.selected;
      this.detailError = "";
      try {
        await studio.del(`/v1/generations/${encodeURIComponent(item.id)}`);
        this.items = this.items.filter((other) => other.id !== item.id);
        this.close();
      } catch (error) {
        this.detailError = studio.messageOf(error);
      }
    },

    rerun() {
      sessionStorage.setItem(RERUN_KEY, JSON.stringify(this.selected));
      window.location.assign("/");
    },
    startFrom() {
      const { id, url, prompt } = this.selected;
      sessionStorage.setItem(INIT_IMAGE_KEY, JSON.stringify({ id, url, prompt }));
      window.location.assign("/");
    },

    // -- text for the template -------------------------------------------------------------------------------

    star(item) {
      return item.favorite ? "★" : "☆";
    },
    ratingText(item) {
      return item.rating ? `${item.rating}/5` : "";
    },
    isRated(value) {
      return Boolean(this.selected) && this.selected.rating === value;
    },
    rateLabel(value) {
      return `${value} star${value === 1 ? "" : "s"}`;
    },
    stars: [1, 2, 3, 4, 5],
    seconds(value) {
      return Number.isFinite(value) ? `${value.toFixed(2)} s` : "";
    },
    filename(item) {
      return `${item.id}.png`;
    },
    /** The parameters worth showing, as [name, text] rows. */
    details(item) {
      if (!item) return [];
      const p = item.params || {};
      const loras = (p.loras || []).map((lora) => `${lora.id} × ${lora.weight}`).join(", ");
      const rows = [
        ["Prompt", item.prompt],
        ["Prompt as run", item.revised_prompt],
        ["Negative prompt", item.negative_prompt || "—"],
        ["Model", item.model],
        ["Base", item.base],
        ["Adapters", loras || "—"],
        ["Style", p.style || "—"],
        ["Industry", p.industry || "—"],
        ["Size", `${item.width}×${item.height}`],
        ["Steps", String(p.steps ?? "")],
        ["Guidance", String(p.guidance_scale ?? "")],
        ["Seed", String(item.seed)],
        ["Kind", item.kind === "edit" ? `image to image (strength ${p.strength})` : "text to image"],
        ["Generation time", this.seconds(item.generation_time_s)],
        ["Created", studio.when(item.created)],
      ];
      return rows.map(([name, text]) => ({ name, text }));
    },
  }));
});
