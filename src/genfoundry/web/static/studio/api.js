// The studio's one client of /v1: every page reads and changes the user's things through it, with the user's API
// key in the Authorization header (kept in sessionStorage, never in a cookie), so the studio goes through the
// same auth, ownership and validation as any API client. Exposed as `window.studio`.
"use strict";
(() => {
  const KEY_STORAGE = "genfoundry.apiKey";

  /** An error answered by the API: its HTTP status and its OpenAI-shaped message, param, code and details. */
  class ApiError extends Error {
    constructor(status, message, param = null, code = null, details = null) {
      super(message);
      this.name = "ApiError";
      this.status = status;
      this.param = param;
      this.code = code;
      this.details = details; // e.g. a ZIP upload's per-file report when nothing in it was valid
    }
  }

  const key = () => sessionStorage.getItem(KEY_STORAGE) || "";
  const setKey = (value) => {
    const trimmed = (value || "").trim();
    if (trimmed) sessionStorage.setItem(KEY_STORAGE, trimmed);
    else sessionStorage.removeItem(KEY_STORAGE);
    announceAuth(false);
  };

  // The layout shows a banner when the server asked for a key; pages need not handle 401 themselves.
  const announceAuth = (needsKey) => window.dispatchEvent(new CustomEvent("studio:auth", { detail: { needsKey } }));

  const authHeaders = (extra) => {
    const headers = new Headers(extra || {});
    const current = key();
    if (current) headers.set("Authorization", `Bearer ${current}`);
    return headers;
  };

  const withQuery = (path, query) => {
    if (!query) return path;
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) {
      if (value === undefined || value === null || value === "") continue;
      params.set(name, String(value));
    }
    const text = params.toString();
    if (!text) return path;
    return path + (path.includes("?") ? "&" : "?") + text;
  };

  const errorFromBody = (status, statusText, body) => {
    const error = body && typeof body === "object" ? body.error : null;
    if (status === 401) announceAuth(true);
    if (error && typeof error === "object") {
      const { param = null, code = null, details = null } = error;
      return new ApiError(status, String(error.message || statusText), param, code, details);
    }
    return new ApiError(status, `${status} ${statusText || "error"}`);
  };

  const errorOf = async (response) => {
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    return errorFromBody(response.status, response.statusText, body);
  };

  /**
   * One request to the API. `json` is sent as a JSON body, `form` as multipart (a FormData); `query` becomes the
   * query string (empty values left out). Answers the parsed JSON (or text); throws an ApiError on 4xx/5xx.
   */
  const request = async (path, { method = "GET", json, form, query, signal, raw = false } = {}) => {
    const init = { method, headers: authHeaders(), signal };
    if (json !== undefined) {
      init.headers.set("Content-Type", "application/json");
      init.body = JSON.stringify(json);
    } else if (form !== undefined) {
      init.body = form;
    }
    const response = await fetch(withQuery(path, query), init);
    if (!response.ok) throw await errorOf(response);
    if (raw) return response;
    const type = response.headers.get("content-type") || "";
    return type.includes("json") ? response.json() : response.text();
  };

  /** An object URL for a resource that needs the key (a dataset image, an export); revoke it when done. */
  const blobUrl = async (path, { signal } = {}) => {
    const response = await request(path, { signal, raw: true });
    return URL.createObjectURL(await response.blob());
  };

  /** Downloads a resource that needs the key, under `filename`. */
  const download = async (path, filename) => {
    const url = await blobUrl(path);
    const link = document.createElement("a");
    link.href = url;
    link.download = filename;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };

  /** A multipart upload with progress (fetch cannot report it): `onProgress(fraction)`; answers the JSON. */
  const upload = (path, form, { method = "POST", onProgress } = {}) =>
    new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(method, path);
      const current = key();
      if (current) xhr.setRequestHeader("Authorization", `Bearer ${current}`);
      xhr.responseType = "json";
      if (onProgress) {
        xhr.upload.addEventListener("progress", (event) => {
          if (event.lengthComputable) onProgress(event.loaded / event.total);
        });
      }
      xhr.addEventListener("load", () => {
        if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.response);
        else reject(errorFromBody(xhr.status, xhr.statusText, xhr.response));
      });
      xhr.addEventListener("error", () => reject(new ApiError(0, "the upload failed: the server could not be reached")));
      xhr.send(form);
    });

  // Server-Sent Events over fetch (EventSource cannot send the Authorization header).
  const readEvents = async (response, onEvent) => {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let block = { id: null, event: "message", data: [] };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).replace(/\r$/, "");
        buffer = buffer.slice(newline + 1);
        if (line === "") {
          if (block.data.length) {
            const stop = onEvent({ id: block.id, event: block.event, data: block.data.join("\n") });
            if (stop === false) {
              await reader.cancel();
              return;
            }
          }
          block = { id: null, event: "message", data: [] };
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "data") block.data.push(text);
          else if (field === "id") block.id = text;
          else if (field === "event") block.event = text;
        }
      }
    }
  };

  /**
   * POSTs `json` and hands each SSE event of the answer to `onEvent({id, event, data})` (data is the raw text;
   * OpenAI streams end with data "[DONE]"). Resolves when the stream ends; throws an ApiError on a 4xx/5xx.
   */
  const streamPost = async (path, json, onEvent, { signal } = {}) => {
    const response = await request(path, { method: "POST", json, signal, raw: true });
    await readEvents(response, onEvent);
  };

  /**
   * Follows a job's event stream (GET), reconnecting with Last-Event-ID after a dropped connection, until the
   * server sends "[DONE]" or `close()` is called. `onEvent(parsedData, id)` gets each event's JSON.
   * Answers `{ close }`.
   */
  const follow = (path, onEvent, { onError, onDone } = {}) => {
    const controller = new AbortController();
    let lastEventId = null;
    let finished = false;
    let delay = 500;
    const run = async () => {
      while (!finished) {
        try {
          const headers = authHeaders({ Accept: "text/event-stream" });
          if (lastEventId) headers.set("Last-Event-ID", lastEventId);
          const response = await fetch(withQuery(path, { stream: "true" }), { headers, signal: controller.signal });
          if (!response.ok) {
            const error = await errorOf(response);
            if (error.status >= 400 && error.status < 500) {
              finished = true;
              if (onError) onError(error);
              return;
            }
            throw error;
          }
          delay = 500;
          await readEvents(response, ({ id, data }) => {
            if (data === "[DONE]") {
              finished = true;
              return false;
            }
            if (id) lastEventId = id;
            try {
              onEvent(JSON.parse(data), id);
            } catch (error) {
              console.error(error);
            }
            return true;
          });
        } catch (error) {
          if (controller.signal.aborted) return;
          if (onError) onError(error);
        }
        if (!finished) {
          await new Promise((resolve) => setTimeout(resolve, delay));
          delay = Math.min(delay * 2, 5000);
        }
      }
      if (onDone && !controller.signal.aborted) onDone();
    };
    run();
    return {
      close() {
        finished = true;
        controller.abort();
      },
    };
  };

  /** "3 s", "2 min", "1 h 5 min" for a number of seconds. */
  const duration = (seconds) => {
    if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.round(s / 60)} min`;
    return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  };

  /** A Unix time (seconds) as the user's local date and time. */
  const when = (unixSeconds) => (unixSeconds ? new Date(unixSeconds * 1000).toLocaleString() : "");

  /** The message to show next to a control for any error (an ApiError's own message, else a generic one). */
  const messageOf = (error) => {
    if (error instanceof ApiError) return error.message;
    if (error && error.name === "AbortError") return "";
    return "The server could not be reached. Is genfoundry still running?";
  };

  window.studio = {
    ApiError,
    key,
    setKey,
    request,
    get: (path, query, options = {}) => request(path, { ...options, query }),
    post: (path, json, options = {}) => request(path, { ...options, method: "POST", json }),
    patch: (path, json, options = {}) => request(path, { ...options, method: "PATCH", json }),
    del: (path, options = {}) => request(path, { ...options, method: "DELETE" }),
    blobUrl,
    download,
    upload,
    streamPost,
    follow,
    duration,
    when,
    messageOf,
  };
})();
