// Training: a form per fine-tuning method, built from GET /v1/fine_tuning/methods (the server's registry: bases,
// hyperparameters with their type, range, one-line description and default per family), and the user's runs.
"use strict";
document.addEventListener("alpine:init", () => {
  const { studio } = window;

  const ACTIVE = ["validating_files", "queued", "running"];
  // Display names of the known methods; any other method the registry lists shows under its id.
  const METHOD_LABELS = {
    lora: "LoRA",
    dreambooth: "DreamBooth",
    supervised: "Supervised (text)",
    classifier: "Classifier",
  };

  /** "sample_every_n_steps" → "Sample every n steps". */
  const labelOf = (name) => {
    const words = name.replace(/_/g, " ");
    return words.charAt(0).toUpperCase() + words.slice(1);
  };

  const shown = (value) => {
    if (value === null || value === undefined) return "";
    if (Array.isArray(value)) return value.length ? value.join(", ") : "none";
    return String(value);
  };

  /** One form field for a hyperparameter of the listing. */
  const fieldOf = (methodId, hyper) => {
    let control = "text";
    if (hyper.type === "integer" || hyper.type === "number") control = "number";
    else if (hyper.type === "boolean" || hyper.choices) control = "choice";
    else if (hyper.type === "array") control = "lines";
    return {
      key: `${methodId}-${hyper.name}`,
      name: hyper.name,
      label: labelOf(hyper.name),
      inputId: `hp-${hyper.name}`,
      hintId: `hp-${hyper.name}-hint`,
      type: hyper.type,
      control,
      choices: hyper.type === "boolean" ? ["true", "false"] : hyper.choices || [],
      min: hyper.minimum,
      max: hyper.maximum,
      step: hyper.type === "integer" ? "1" : "any",
      maxLength: hyper.max_length,
      description: hyper.description,
      auto: hyper.auto,
      defaults: hyper.defaults,
      placeholder: "",
      hint: hyper.description,
      value: "",
    };
  };

  /** The field's value as the API takes it; undefined when left empty (the default applies). */
  const valueOf = (field) => {
    const raw = typeof field.value === "string" ? field.value.trim() : field.value;
    if (raw === "" || raw === null || raw === undefined) return undefined;
    if (field.type === "integer" || field.type === "number") {
      if (field.auto && raw === "auto") return "auto";
      const number = Number(raw);
      return Number.isFinite(number) ? number : raw; // the server names a bad number
    }
    if (field.type === "boolean") return raw === "true";
    if (field.type === "array") {
      return String(raw)
        .split("\n")
        .map((line) => line.trim())
        .filter((line) => line);
    }
    return raw;
  };

  window.Alpine.data("trainingPage", () => ({
    methods: [],
    datasets: [],
    jobs: [],
    fields: [],
    methodId: "",
    baseId: "",
    datasetId: "",
    validationId: "",
    suffix: "",
    seed: "",
    loaded: false,
    starting: false,
    loadError: "",
    jobsError: "",
    formError: "",
    errorParam: "",
    errorMessage: "",
    when: studio.when,
    timer: null,

    async init() {
      await Promise.all([this.loadMethods(), this.loadDatasets(), this.loadJobs()]);
      // "Train on this dataset" on a dataset's page hands its id over in the query string.
      const wanted = new URLSearchParams(window.location.search).get("dataset");
      if (wanted && this.datasetsForMethod().some((dataset) => dataset.id === wanted)) this.datasetId = wanted;
      this.timer = setInterval(() => {
        if (this.jobs.some((job) => ACTIVE.includes(job.status))) this.loadJobs();
      }, 3000);
    },
    destroy() {
      clearInterval(this.timer);
    },

    async loadMethods() {
      try {
        const page = await studio.get("/v1/fine_tuning/methods");
        this.methods = page.data;
        const params = new URLSearchParams(window.location.search);
        const wanted = params.get("method");
        const first = this.methods.find((method) => method.id === wanted) || this.methods[0];
        if (first) {
          this.methodId = first.id;
          this.chooseMethod();
        }
      } catch (error) {
        this.loadError = studio.messageOf(error);
      }
    },
    async loadDatasets() {
      try {
        this.datasets = (await studio.get("/v1/datasets", { limit: 100 })).data;
      } catch (error) {
        this.loadError = studio.messageOf(error);
      }
    },
    async loadJobs() {
      try {
        this.jobs = (await studio.get("/v1/fine_tuning/jobs", { limit: 100 })).data;
        this.jobsError = "";
      } catch (error) {
        this.jobsError = studio.messageOf(error);
      }
      this.loaded = true;
    },

    method() {
      return this.methods.find((method) => method.id === this.methodId) || null;
    },
    methodLabel(method) {
      return METHOD_LABELS[method.id] || labelOf(method.id);
    },
    methodDescription() {
      const method = this.method();
      return method ? method.description : "";
    },
    bases() {
      const method = this.method();
      return method ? method.bases : [];
    },
    baseLabel(base) {
      return `${base.id} (${base.family})`;
    },
    family() {
      const base = this.bases().find((each) => each.id === this.baseId);
      return base ? base.family : null;
    },
    chooseMethod() {
      const method = this.method();
      if (!method) return;
      this.fields = method.hyperparameters.map((hyper) => fieldOf(method.id, hyper));
      if (!method.bases.some((base) => base.id === this.baseId)) this.baseId = method.bases.length ? method.bases[0].id : "";
      if (!this.datasetsForMethod().some((dataset) => dataset.id === this.datasetId)) this.datasetId = "";
      if (!this.datasetsForMethod().some((dataset) => dataset.id === this.validationId)) this.validationId = "";
      this.clearErrors();
      this.chooseBase();
    },
    chooseBase() {
      const family = this.family();
      for (const field of this.fields) {
        const value = family ? field.defaults[family] : null;
        const text = shown(value);
        field.placeholder = text ? `default: ${text}` : field.auto ? "auto" : "";
        field.hint = text ? `${field.description} Default for ${family}: ${text}.` : field.description;
      }
    },
    datasetsForMethod() {
      const method = this.method();
      if (!method) return [];
      const kind = method.dataset === "image" ? "image" : "text";
      return this.datasets.filter((dataset) => dataset.kind === kind);
    },
    takesValidationFile() {
      const method = this.method();
      return Boolean(method && method.validation_file);
    },
    datasetLabel(dataset) {
      const count = dataset.stats && dataset.stats.accepted !== undefined ? ` · ${dataset.stats.accepted} items` : "";
      return `${dataset.name} (${dataset.status}${count})`;
    },
    datasetHint() {
      const method = this.method();
      if (!method) return "";
      if (method.dataset === "image") return "An image dataset (Datasets page), ready.";
      if (method.dataset === "classification") return 'A JSONL file of {"text", "label"} lines.';
      return 'A JSONL file of {"prompt", "completion"} or {"messages"} lines.';
    },

    /** Seconds per step of the user's last finished run with this method and base, times the steps asked. */
    estimate() {
      const method = this.method();
      if (!method || !this.baseId) return "";
      const past = this.jobs.find(
        (job) =>
          job.status === "succeeded" &&
          job.method.id === method.id &&
          job.model === this.baseId &&
          job.finished_at &&
          job.progress.total > 0,
      );
      const stepsField = this.fields.find((field) => field.name === "max_steps");
      const asked = stepsField ? valueOf(stepsField) : undefined;
      const family = this.family();
      const steps = typeof asked === "number" ? asked : stepsField && family ? stepsField.defaults[family] : null;
      if (!past || !steps) return "No time estimate yet: it comes from your first finished run on this base.";
      const perStep = (past.finished_at - past.created_at) / past.progress.total;
      return `Estimated time: about ${studio.duration(perStep * steps)} (${steps} steps, from your last run on ${past.model}).`;
    },

    clearErrors() {
      this.formError = "";
      this.errorParam = "";
      this.errorMessage = "";
    },
    /** The API error's message next to the control named by its `param` (the last part of a dotted path). */
    errorFor(name) {
      return this.errorParam === name ? this.errorMessage : "";
    },
    controls() {
      const named = ["model", "training_file", "validation_file", "suffix", "seed"];
      return [...named, ...this.fields.map((field) => field.name)];
    },

    async start() {
      this.clearErrors();
      const method = this.method();
      if (!method) return;
      if (!this.datasetId) {
        this.errorParam = "training_file";
        this.errorMessage = "Choose a dataset to train on.";
        return;
      }
      const hyperparameters = {};
      for (const field of this.fields) {
        const value = valueOf(field);
        if (value !== undefined) hyperparameters[field.name] = value;
      }
      const body = {
        model: this.baseId,
        training_file: this.datasetId,
        method: { type: method.id, [method.id]: { hyperparameters } },
      };
      if (this.takesValidationFile() && this.validationId) body.validation_file = this.validationId;
      if (this.suffix.trim()) body.suffix = this.suffix.trim();
      if (String(this.seed).trim() !== "") body.seed = Number(this.seed);
      this.starting = true;
      try {
        const job = await studio.post("/v1/fine_tuning/jobs", body);
        window.location.assign(`/training/${encodeURIComponent(job.id)}`);
      } catch (error) {
        const param = error.param ? String(error.param).split(".").pop() : "";
        const known = this.controls().includes(param) ? param : param === "epochs" ? "n_epochs" : "";
        if (known) {
          this.errorParam = known;
          this.errorMessage = studio.messageOf(error);
        } else {
          this.formError = studio.messageOf(error);
        }
        this.starting = false;
      }
    },

    jobUrl(job) {
      return `/training/${encodeURIComponent(job.id)}`;
    },
    jobName(job) {
      return job.user_provided_suffix ? `${job.user_provided_suffix} (${job.id})` : job.id;
    },
    percent(job) {
      return job.progress && job.progress.total ? Math.round((100 * job.progress.step) / job.progress.total) : 0;
    },
    progressText(job) {
      return job.progress && job.progress.total ? `${job.progress.step} / ${job.progress.total}` : "";
    },
    statusClass(job) {
      return job.status === "succeeded" ? "ok" : job.status === "failed" ? "bad" : "";
    },
  }));
});
