// A training job, live over its SSE stream (studio.follow, resumed with Last-Event-ID): status, progress with ETA,
// metrics on a uPlot chart, samples, checkpoints × prompts grid with one-click promotion, log tail.
"use strict";
document.addEventListener("alpine:init", () => {
  const { studio } = window;

  const ACTIVE = ["validating_files", "queued", "running"];
  // Metrics an event may carry, charted in this order: losses on the left axis, accuracies (0–1) on the right.
  const SERIES = [
    { key: "loss", label: "Loss", color: "--accent", scale: "loss" },
    { key: "eval_loss", label: "Eval loss", color: "--warn", scale: "loss" },
    { key: "contrastive_loss", label: "Contrastive loss", color: "--warn", scale: "loss" },
    { key: "token_accuracy", label: "Token accuracy", color: "--ok", scale: "ratio" },
    { key: "val_accuracy", label: "Accuracy", color: "--ok", scale: "ratio" },
  ];
  const LOG_LINES = 60;

  const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";

  window.Alpine.data("trainingJob", () => {
    // Kept outside Alpine's reactive proxy: the chart and its columns change on every event.
    let chart = null;
    let chartKeys = [];
    let steps = [];
    let columns = {};
    let stream = null;
    let drawPending = false;
    let logPending = false;

    return {
      jobId: "",
      job: null,
      method: null, // the job's method as GET /v1/fine_tuning/methods describes it (resumable, dataset)
      loadError: "",
      actionError: "",
      busy: false,
      latest: null, // the last metrics event's data
      points: 0,
      lastValues: "",
      samples: [],
      sampleSteps: [],
      checkpoints: [],
      log: "",
      gridPrompts: "",
      gridSeed: "0",
      gridRows: [],
      gridBusy: false,
      gridError: "",
      promoteName: "",
      promoteTrigger: "",
      promoted: "",
      promoteError: "",

      async init() {
        this.jobId = this.$el.dataset.jobId;
        window.addEventListener("resize", () => this.resizeChart());
        await this.loadJob();
        if (!this.job) return;
        this.loadMethod();
        const hyper = this.job.hyperparameters || {};
        this.gridPrompts = (hyper.validation_prompts || []).join("\n");
        this.gridSeed = String(this.job.seed || 0);
        this.promoteName = this.job.user_provided_suffix || `${this.job.model}-fine-tune`;
        this.loadCheckpoints();
        this.loadLog();
        this.follow();
      },
      destroy() {
        if (stream) stream.close();
      },

      path(suffix = "") {
        return `/v1/fine_tuning/jobs/${encodeURIComponent(this.jobId)}${suffix}`;
      },
      async loadJob() {
        try {
          this.job = await studio.get(this.path());
          this.loadError = "";
        } catch (error) {
          this.loadError = error.status === 404 ? "There is no such training job among yours." : studio.messageOf(error);
        }
      },
      async loadMethod() {
        try {
          const methods = (await studio.get("/v1/fine_tuning/methods")).data;
          this.method = methods.find((method) => method.id === this.job.method.id) || null;
        } catch (error) {
          this.method = null; // the page works without it: no resume button, no image grid
        }
      },
      async loadCheckpoints() {
        try {
          this.checkpoints = (await studio.get(this.path("/checkpoints"), { limit: 100 })).data;
          this.layoutGrid();
        } catch (error) {
          this.gridError = studio.messageOf(error);
        }
      },
      async loadLog() {
        try {
          this.log = await studio.get(`/v1/jobs/${encodeURIComponent(this.jobId)}/log`, { tail: LOG_LINES });
        } catch (error) {
          this.log = studio.messageOf(error);
        }
      },
      /** At most one log request in flight; events that come meanwhile ask for one more. */
      refreshLog() {
        if (logPending) return;
        logPending = true;
        setTimeout(async () => {
          await this.loadLog();
          logPending = false;
        }, 500);
      },

      follow() {
        if (stream) stream.close();
        chart = null;
        chartKeys = [];
        steps = [];
        columns = {};
        this.points = 0;
        this.samples = [];
        this.sampleSteps = [];
        this.$refs.chart.replaceChildren();
        stream = studio.follow(this.path("/events"), (event) => this.onEvent(event), {
          onError: (error) => {
            if (error.status === 404) this.loadError = "There is no such training job among yours.";
          },
          onDone: () => {
            this.loadJob();
            this.loadCheckpoints();
            this.loadLog();
          },
        });
      },
      onEvent(event) {
        const data = event.data || {};
        if (data.kind === "metrics") this.addMetrics(data);
        else if (data.kind === "sample") this.addSample(event.id, data);
        else if (data.kind === "checkpoint") this.loadCheckpoints();
        else if (data.kind === "status") this.loadJob();
        if (data.kind === "log" || data.kind === "status") this.refreshLog();
      },

      addMetrics(data) {
        this.latest = data;
        if (this.job && data.total) this.job.progress = { step: data.step, total: data.total };
        if (this.job && this.job.status === "queued") this.job.status = "running";
        const keys = SERIES.filter((series) => typeof data[series.key] === "number").map((series) => series.key);
        if (!keys.length) return;
        let index = steps.indexOf(data.step);
        if (index < 0) {
          steps.push(data.step);
          index = steps.length - 1;
          for (const key of Object.keys(columns)) columns[key].push(null);
        }
        let grew = false;
        for (const key of keys) {
          if (!columns[key]) {
            columns[key] = steps.map(() => null);
            grew = true;
          }
          columns[key][index] = data[key];
        }
        this.points = steps.length;
        this.lastValues = keys
          .map((key) => `${SERIES.find((series) => series.key === key).label.toLowerCase()} ${data[key].toFixed(4)}`)
          .join(", ");
        if (grew) chart = null;
        this.scheduleDraw();
      },
      scheduleDraw() {
        if (drawPending) return;
        drawPending = true;
        requestAnimationFrame(() => {
          drawPending = false;
          this.draw();
        });
      },
      draw() {
        const keys = SERIES.map((series) => series.key).filter((key) => columns[key]);
        const data = [steps, ...keys.map((key) => columns[key])];
        if (chart && keys.join() === chartKeys.join()) {
          chart.setData(data);
          return;
        }
        if (chart) chart.destroy();
        this.$refs.chart.replaceChildren();
        chartKeys = keys;
        const text = cssVar("--text");
        const grid = cssVar("--border");
        const axis = { stroke: text, grid: { stroke: grid }, ticks: { stroke: grid } };
        const described = keys.map((key) => SERIES.find((each) => each.key === key));
        const axes = [{ ...axis, label: "step" }];
        if (described.some((series) => series.scale === "loss")) axes.push({ ...axis, scale: "loss" });
        if (described.some((series) => series.scale === "ratio")) {
          axes.push({ ...axis, scale: "ratio", side: 1, grid: { show: false } });
        }
        chart = new window.uPlot(
          {
            width: this.chartWidth(),
            height: 260,
            scales: { x: { time: false }, ratio: { range: [0, 1] } },
            axes,
            series: [
              { label: "step" },
              ...described.map((series) => ({
                label: series.label,
                scale: series.scale,
                stroke: cssVar(series.color),
                width: 2,
                spanGaps: true,
              })),
            ],
          },
          data,
          this.$refs.chart,
        );
      },
      chartWidth() {
        return Math.max(240, this.$refs.chart.clientWidth || 600);
      },
      resizeChart() {
        if (chart) chart.setSize({ width: this.chartWidth(), height: 260 });
      },
      chartSummary() {
        if (!this.points) return "No metrics yet: the chart fills in as the run trains.";
        return `${this.points} ${this.points === 1 ? "point" : "points"} plotted; last ${this.lastValues}.`;
      },

      addSample(id, data) {
        if (!data.url) return;
        this.samples.push({ id: id || `${data.step}-${data.name}`, step: data.step, prompt: data.prompt, url: data.url });
        const groups = new Map();
        for (const sample of this.samples) {
          if (!groups.has(sample.step)) groups.set(sample.step, []);
          groups.get(sample.step).push(sample);
        }
        this.sampleSteps = [...groups.entries()].map(([step, samples]) => ({ step, samples }));
      },

      // Overview
      title() {
        if (!this.job) return "";
        return this.job.user_provided_suffix ? `${this.job.user_provided_suffix} (${this.job.id})` : this.job.id;
      },
      status() {
        return this.job ? this.job.status : "";
      },
      statusClass() {
        const status = this.status();
        return status === "succeeded" ? "ok" : status === "failed" ? "bad" : "";
      },
      methodName() {
        return this.job ? this.job.method.id : "";
      },
      isImage() {
        return Boolean(this.method && this.method.dataset === "image");
      },
      learningRate() {
        return this.latest && typeof this.latest.lr === "number" ? this.latest.lr.toExponential(2) : "—";
      },
      speed() {
        return this.latest && typeof this.latest.it_per_s === "number" ? `${this.latest.it_per_s.toFixed(2)} it/s` : "—";
      },
      generateLink() {
        const made = this.job && this.job.fine_tuned_model;
        return made && this.isImage() ? `/?model=${encodeURIComponent(made)}` : "";
      },
      result() {
        return this.job && this.job.fine_tuned_model ? this.job.fine_tuned_model : "—";
      },
      percent() {
        const progress = this.job && this.job.progress;
        return progress && progress.total ? Math.round((100 * progress.step) / progress.total) : 0;
      },
      progressText() {
        const progress = this.job && this.job.progress;
        if (!progress || !progress.total) return ACTIVE.includes(this.status()) ? "Waiting to start…" : "";
        let text = `Step ${progress.step} of ${progress.total}`;
        const rate = this.latest && this.latest.it_per_s;
        if (this.status() === "running" && rate > 0) {
          text += ` · about ${studio.duration((progress.total - progress.step) / rate)} left`;
        }
        return text;
      },
      jobError() {
        return this.job && this.job.error ? this.job.error.message : "";
      },
      canCancel() {
        return ACTIVE.includes(this.status());
      },
      canResume() {
        return ["cancelled", "failed"].includes(this.status()) && Boolean(this.method && this.method.resumable);
      },
      async cancel() {
        await this.act("/cancel");
      },
      async resume() {
        if (await this.act("/resume")) this.follow();
      },
      async act(suffix) {
        this.busy = true;
        this.actionError = "";
        try {
          this.job = await studio.post(this.path(suffix), {});
          return true;
        } catch (error) {
          this.actionError = studio.messageOf(error);
          return false;
        } finally {
          this.busy = false;
        }
      },

      // Checkpoints × prompts
      checkpointsOldestFirst() {
        return [...this.checkpoints].sort((a, b) => a.step_number - b.step_number);
      },
      checkpointLoss(checkpoint) {
        const loss = checkpoint.metrics && checkpoint.metrics.train_loss;
        return typeof loss === "number" ? `loss ${loss.toFixed(4)}` : "";
      },
      prompts() {
        return this.gridPrompts
          .split("\n")
          .map((line) => line.trim())
          .filter((line) => line);
      },
      /** Rows of the grid for the current prompts and checkpoints, keeping images already made. */
      layoutGrid() {
        const made = new Map();
        for (const row of this.gridRows) for (const cell of row.cells) made.set(cell.key, cell);
        this.gridRows = this.prompts().map((prompt, index) => ({
          key: `${index}:${prompt}`,
          prompt,
          cells: this.checkpointsOldestFirst().map((checkpoint) => {
            const key = `${checkpoint.id}|${this.gridSeed}|${prompt}`;
            return (
              made.get(key) || {
                key,
                checkpoint: checkpoint.fine_tuned_model_checkpoint,
                prompt,
                alt: `${prompt} (step ${checkpoint.step_number})`,
                url: "",
                error: "",
                pending: false,
              }
            );
          }),
        }));
      },
      async showGrid() {
        this.gridError = "";
        if (!this.prompts().length) {
          this.gridError = "Write at least one prompt.";
          return;
        }
        this.layoutGrid();
        this.gridBusy = true;
        const seed = Number(this.gridSeed) || 0;
        // One image at a time, each cell filled as it finishes (the server queues them anyway).
        for (const row of this.gridRows) {
          for (const cell of row.cells) {
            if (cell.url || !cell.checkpoint) continue;
            cell.pending = true;
            try {
              const answer = await studio.post("/v1/images/generations", {
                model: cell.checkpoint,
                prompt: cell.prompt,
                seed,
                n: 1,
              });
              cell.url = answer.data[0].url;
              cell.error = "";
            } catch (error) {
              cell.error = studio.messageOf(error);
            }
            cell.pending = false;
          }
        }
        this.gridBusy = false;
      },
      async promote(checkpoint) {
        this.promoted = "";
        this.promoteError = "";
        const body = { name: this.promoteName.trim() || `${this.job.model}-step-${checkpoint.step_number}` };
        if (this.promoteTrigger.trim()) body.trigger_word = this.promoteTrigger.trim();
        try {
          const model = await studio.post(this.path(`/checkpoints/${encodeURIComponent(checkpoint.id)}/promote`), body);
          this.promoted = `Step ${checkpoint.step_number} is now the model “${model.name}” (${model.id}).`;
        } catch (error) {
          this.promoteError = studio.messageOf(error);
        }
      },
    };
  });
});
