// The sluice dashboard: polls the admin API's /health (and /dlq when it
// exists) and renders the report. Plain DOM, no framework, no build step;
// every value from the API is written with textContent, never as HTML.
"use strict";

(function () {
  const body = document.body;
  const cfg = {
    api: body.dataset.api || "",
    interval: Number(body.dataset.intervalMs) || 1000,
    history: Number(body.dataset.historyMs) || 120000,
    dlqLimit: Number(body.dataset.dlqLimit) || 0,
  };
  // A request that takes longer than this counts as a failure.
  const timeout = Math.max(5000, cfg.interval);
  const TOKEN_KEY = "sluice.dashboard.token";

  const $ = (id) => document.getElementById(id);

  // ---- the bearer token -------------------------------------------------

  // The token comes in the URL fragment (#token=...), which the browser
  // never sends to a server. It is kept in sessionStorage (this tab only)
  // and removed from the address bar so that it is not shown on screen.
  let token = "";
  function readToken() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    const t = params.get("token");
    if (t !== null) {
      token = t;
      try {
        sessionStorage.setItem(TOKEN_KEY, t);
      } catch (e) {
        // Storage may be disabled; the token still works until a reload.
      }
      history.replaceState(null, "", location.pathname + location.search);
    } else if (!token) {
      try {
        token = sessionStorage.getItem(TOKEN_KEY) || "";
      } catch (e) {
        token = "";
      }
    }
  }

  // ---- formatting ---------------------------------------------------------

  const pad = (n) => String(n).padStart(2, "0");

  function pct(x) {
    return typeof x === "number" && isFinite(x) ? (x * 100).toFixed(1) + "%" : "–";
  }

  function dur(s) {
    if (typeof s !== "number" || !isFinite(s) || s < 0) return "–";
    if (s < 1) return Math.round(s * 1000) + " ms";
    if (s < 10) return (Number.isInteger(s) ? s : s.toFixed(1)) + " s";
    if (s < 59.5) return Math.round(s) + " s";
    s = Math.round(s);
    if (s < 3600) return Math.floor(s / 60) + " min " + pad(s % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + pad(Math.floor((s % 3600) / 60)) + " min";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }

  function clock(d) {
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function bytes(n) {
    if (typeof n !== "number" || n <= 0) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
  }

  const count = (n) => (typeof n === "number" ? n.toLocaleString("en") : "–");

  // ---- DOM helpers --------------------------------------------------------

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function timeEl(iso) {
    const d = new Date(iso);
    if (!iso || isNaN(d) || d.getUTCFullYear() < 1970) return el("span", "–"); // absent or Go's zero time
    const t = el("time", clock(d));
    t.dateTime = d.toISOString();
    t.title = d.toISOString();
    return t;
  }

  const num = (n) => el("td", count(n), "num");

  // badge returns a cell showing a state as a coloured label; data-state
  // carries the raw value for styling (and for tests).
  function badge(state, kind) {
    const td = el("td");
    const span = el("span", state, "badge");
    span.dataset.state = state;
    if (kind) span.dataset.kind = kind;
    td.append(span);
    td.dataset.state = state;
    td.className = "state";
    return td;
  }

  // fill renders one row per item into the table of the container, or
  // shows the container's "empty" paragraph. Rows are keyed by item[key]
  // and updated in place, cell by cell, so that a poll changes only what
  // changed: an operator's text selection survives, and screen readers
  // are not handed a new table every second.
  function fill(container, items, key, cells) {
    const table = container.querySelector("table");
    const tbody = table.tBodies[0];
    const old = new Map();
    for (const tr of tbody.rows) old.set(tr.dataset.name, tr);
    let at = tbody.firstElementChild;
    for (const item of items || []) {
      const name = String(item[key]);
      const head = el("th", name);
      head.scope = "row";
      const fresh = [head, ...cells(item)];
      let tr = old.get(name);
      old.delete(name);
      if (!tr) {
        tr = document.createElement("tr");
        tr.dataset.name = name;
        tr.append(...fresh);
      } else {
        fresh.forEach((cell, i) => {
          const cur = tr.cells[i];
          if (!cur) tr.append(cell);
          else if (!cur.isEqualNode(cell)) cur.replaceWith(cell);
        });
        while (tr.cells.length > fresh.length) tr.lastElementChild.remove();
      }
      if (tr !== at) tbody.insertBefore(tr, at);
      else at = at.nextElementSibling;
    }
    for (const tr of old.values()) tr.remove();
    const n = tbody.rows.length;
    table.hidden = n === 0;
    container.querySelector(".empty").hidden = n !== 0;
  }

  // replaceIfChanged gives parent the children fresh, unless it has equal
  // ones already.
  function replaceIfChanged(parent, fresh) {
    const cur = parent.children;
    if (cur.length === fresh.length && fresh.every((f, i) => f.isEqualNode(cur[i]))) return;
    parent.replaceChildren(...fresh);
  }

  function setText(e, text) {
    // Only touch the DOM on change: fewer repaints, and live regions
    // announce real changes only.
    if (e.textContent !== text) e.textContent = text;
  }

  // ---- rendering ----------------------------------------------------------

  const scores = []; // {t, score}, the last cfg.history ms
  let lastStatus = "";
  let lastSince = "";
  let lastOK = null; // Date of the last good report

  function render(r) {
    const overall = $("overall");
    const status = String(r.status);
    setText($("score"), pct(r.score));
    $("score").dataset.score = r.score;
    setText($("status"), status);
    $("status").dataset.status = status;
    overall.dataset.status = status;
    // The server says when its status last changed (status_since); a
    // server too old to say gets the time this tab first saw the status.
    const since = r.status_since || "";
    if (status !== lastStatus || since !== lastSince) {
      lastStatus = status;
      lastSince = since;
      const p = $("status-since");
      p.replaceChildren("Status " + status + " since ", since ? timeEl(since) : el("span", clock(new Date())), ".");
    }
    replaceIfChanged(
      $("components"),
      (r.components || []).map((c) => {
        const li = el("li");
        li.append(el("span", c.name + " "), el("strong", pct(c.score)));
        return li;
      })
    );

    renderSpark(r.score);
    renderAlerts(r.alerts || []);

    const b = r.breakers || {};
    setText(
      $("breaker-summary"),
      b.total
        ? b.open + " open, " + b.half_open + " half-open, " + b.closed + " closed, of " + b.total + "."
        : ""
    );
    fill($("breakers"), b.items, "name", (x) => [
      badge(x.state, "breaker"),
      el("td", dur(x.in_state_seconds)),
      el("td", x.next_probe_seconds > 0 ? dur(x.next_probe_seconds) : "–"),
      el("td", pct(x.failure_rate) + " of " + count(x.window_calls) + " calls"),
      num(x.calls),
      num(x.failures),
      num(x.rejected),
    ]);

    fill($("bulkheads"), r.bulkheads, "name", (x) => {
      const td = el("td", null, "bar");
      const m = el("meter");
      m.min = 0;
      m.max = 1;
      m.low = 0.7;
      m.high = 0.9;
      m.optimum = 0;
      m.value = x.utilization || 0;
      m.setAttribute("aria-label", x.name + " utilisation");
      td.append(m, el("span", " " + x.active + " of " + x.limit + " (" + pct(x.utilization) + ")"));
      const rej = el("td", pct(x.rejection_rate), "num");
      if (x.rejection_rate > 0.1) rej.classList.add("warn");
      return [td, num(x.queued), rej, num(x.rejected)];
    });

    fill($("retries"), r.retries, "name", (x) => {
      const td = el("td", pct(x.success_rate) + " of " + count(x.window_calls) + " calls");
      if (x.window_calls > 0 && x.success_rate < 0.7) td.classList.add("warn");
      return [td, num(x.calls), num(x.retries), num(x.exhausted), num(x.budget_refused)];
    });

    fill($("limiters"), r.limiters, "name", (x) => [
      el("td", pct(x.rejection_rate) + " of " + count(x.window_calls) + " calls"),
      el("td", (x.tokens || 0).toFixed(1) + " of " + x.burst),
      el("td", x.rate > 0 ? x.rate + " per " + dur(x.per_seconds) : "unlimited"),
      num(x.allowed),
      num(x.rejected),
    ]);

    fill($("dlq-queues"), r.dlq, "queue", (x) => [
      num(x.ready),
      num(x.parked),
      num(x.depth),
      el("td", dur(x.oldest_age_seconds)),
      el("td", bytes(x.bytes), "num"),
    ]);
    const errs = r.dlq_errors || [];
    replaceIfChanged($("dlq-errors"), errs.map((e) => el("li", "Unavailable: " + e, "alert")));
    $("dlq-errors").hidden = errs.length === 0;

    // This instance's name, and each component whose state the fleet
    // shares: shared or degraded (local), and for a shared breaker the
    // fleet's record beside this instance's own state.
    const inst = $("instance");
    setText(inst, r.instance ? "Instance " + r.instance : "");
    inst.hidden = !r.instance;
    fill($("shared"), r.shared, "name", (x) => [
      badge(x.degraded ? "degraded" : "shared", "shared"),
      el("td", x.fleet || "–"),
      el("td", x.local || "–"),
      el("td", x.last_error || "–"),
    ]);

    fill($("probes"), r.probes, "name", (x) => {
      const state = x.healthy ? "healthy" : "unhealthy";
      const since = el("td");
      since.append(timeEl(x.since));
      const last = el("td");
      if (x.last_check) {
        last.append(timeEl(x.last_check));
        last.append(" — status " + (x.last_status || "none") + " in " + dur(x.last_latency_seconds));
      } else {
        last.textContent = "not yet";
      }
      const target = el("td");
      target.append(el("code", x.url));
      return [target, badge(state, "probe"), since, num(x.checks), num(x.failures), last, el("td", x.last_error || "–")];
    });
  }

  function renderAlerts(alerts) {
    const list = $("alert-list");
    setText($("alert-count"), String(alerts.length));
    replaceIfChanged(
      list,
      alerts.map((a) => {
        const li = el("li", null, "alert");
        li.dataset.severity = a.severity;
        li.dataset.type = a.type;
        li.dataset.subject = a.subject;
        li.append(
          el("span", a.severity, "badge"),
          " ",
          el("strong", a.subject),
          ": ",
          el("span", a.message),
          " "
        );
        const meta = el("small", " (" + a.type + ", since ");
        meta.append(timeEl(a.since), ")");
        li.append(meta);
        li.firstChild.dataset.state = a.severity;
        return li;
      })
    );
    list.hidden = alerts.length === 0;
    $("alerts").querySelector(".empty").hidden = alerts.length !== 0;
  }

  function renderSpark(score) {
    const now = Date.now();
    scores.push({ t: now, score: score });
    while (scores.length && scores[0].t < now - cfg.history) scores.shift();
    const start = now - cfg.history;
    const pts = scores.map((p) => {
      const x = ((p.t - start) / cfg.history) * 296; // room for the dot
      const y = 2 + (1 - Math.min(1, Math.max(0, p.score))) * 56;
      return x.toFixed(1) + "," + y.toFixed(1);
    });
    $("spark-line").setAttribute("points", pts.join(" "));
    // The newest sample as a dot (a zero-length line with round caps keeps
    // its shape in the stretched drawing), so that a short history shows.
    const [x, y] = pts[pts.length - 1].split(",");
    const dot = $("spark-now");
    dot.setAttribute("x1", x);
    dot.setAttribute("x2", x);
    dot.setAttribute("y1", y);
    dot.setAttribute("y2", y);
    dot.removeAttribute("visibility");
    let lo = 1;
    let hi = 0;
    for (const p of scores) {
      lo = Math.min(lo, p.score);
      hi = Math.max(hi, p.score);
    }
    setText($("spark-summary"), "Now " + pct(score) + ", lowest " + pct(lo) + ", highest " + pct(hi) + ".");
  }

  function renderMessages(page) {
    const box = $("dlq-messages");
    box.hidden = false;
    const msgs = page.messages || [];
    setText(
      $("dlq-messages-note"),
      msgs.length && page.next
        ? "The oldest " + msgs.length + " messages; more are queued."
        : ""
    );
    fill(box, msgs, "id", (m) => {
      const req = el("td");
      if (m.method || m.uri) req.append(el("code", (m.method || "") + " " + (m.uri || "")));
      else req.textContent = "–";
      const enq = el("td");
      enq.append(timeEl(m.enqueued));
      return [
        el("td", m.queue),
        badge(m.state, "message"),
        req,
        num(m.attempts),
        num(m.replays),
        enq,
        el("td", m.last_error || "–"),
      ];
    });
  }

  function showError(text) {
    setText($("error-text"), text);
    setText(
      $("error-stale"),
      lastOK ? "The figures below are from " + clock(lastOK) + " and may be out of date." : "No report has been received yet."
    );
    $("error").hidden = false;
    document.querySelector("main").dataset.stale = "true";
  }

  function hideError() {
    $("error").hidden = true;
    delete document.querySelector("main").dataset.stale;
  }

  function updated() {
    if (!lastOK) return;
    const ago = Math.max(0, Math.round((Date.now() - lastOK) / 1000));
    setText($("updated"), "Last updated " + clock(lastOK) + (ago >= 2 ? " (" + ago + " s ago)" : "") + ".");
  }

  // ---- polling --------------------------------------------------------------

  function url(path) {
    return new URL(cfg.api + path, location.href).toString();
  }

  async function getJSON(path) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeout);
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    try {
      const res = await fetch(url(path), {
        headers: headers,
        cache: "no-store",
        credentials: "same-origin",
        signal: ctl.signal,
      });
      let data = null;
      if ((res.headers.get("Content-Type") || "").includes("json")) {
        try {
          data = await res.json();
        } catch (e) {
          data = null;
        }
      }
      return { status: res.status, data: data };
    } finally {
      clearTimeout(timer);
    }
  }

  function failure(path, e) {
    if (e && e.name === "AbortError") return "No answer from " + url(path) + " within " + timeout / 1000 + " s.";
    return "Cannot reach " + url(path) + " (" + (e && e.message ? e.message : e) + ").";
  }

  function refused(path, r) {
    if (r.status === 401 || r.status === 403) {
      return (
        url(path) + " answered " + r.status + ": the admin API needs a bearer token. " +
        "Open this page as " + location.pathname + "#token=<token>."
      );
    }
    const detail = r.data && typeof r.data.error === "string" ? ": " + r.data.error : "";
    return url(path) + " answered HTTP " + r.status + detail + ".";
  }

  const isReport = (d) => d !== null && typeof d === "object" && typeof d.score === "number" && typeof d.status === "string";

  async function pollHealth() {
    let r;
    try {
      r = await getJSON("/health");
    } catch (e) {
      showError(failure("/health", e));
      return;
    }
    // 503 is the answer while critical: a report, not an error.
    if ((r.status === 200 || r.status === 503) && isReport(r.data)) {
      lastOK = new Date();
      hideError();
      render(r.data);
      return;
    }
    showError(refused("/health", r));
  }

  let listDLQ = cfg.dlqLimit > 0;

  async function pollDLQ() {
    let r;
    const path = "/dlq?limit=" + cfg.dlqLimit;
    try {
      r = await getJSON(path);
    } catch (e) {
      setText($("dlq-messages-note"), failure(path, e));
      return;
    }
    if (r.status === 404 || r.status === 405) {
      // No message listing on this server: the queue statistics of the
      // health report are all there is.
      listDLQ = false;
      $("dlq-messages").hidden = true;
      return;
    }
    if (r.status === 200 && r.data && Array.isArray(r.data.messages)) {
      renderMessages(r.data);
      return;
    }
    $("dlq-messages").hidden = false;
    setText($("dlq-messages-note"), refused(path, r));
  }

  async function poll() {
    const started = Date.now();
    const jobs = [pollHealth()];
    if (listDLQ) jobs.push(pollDLQ());
    await Promise.allSettled(jobs);
    updated();
    setTimeout(poll, Math.max(0, cfg.interval - (Date.now() - started)));
  }

  readToken();
  window.addEventListener("hashchange", readToken);
  poll();
})();
