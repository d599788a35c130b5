// Reading page: one page for a whole reading session. Each case is swapped in place (its
// description fetched as JSON, its images fetched and decoded before any is drawn), the next
// case's images are fetched while the reader reads, each answer is stored exactly once.
//
// Blinding: a case description carries opaque URLs in display order and nothing about the
// truth; every image of a case is fetched at once, in display order, by the same code, and the
// next case's images are fetched at one fixed moment (when a case is shown), whatever they are.
"use strict";

(function () {
  const root = document.getElementById("reader");
  if (!root) return;
  const $ = (selector) => root.querySelector(selector);
  const form = document.getElementById("answer-form");
  const fields = document.getElementById("answer-fields");
  const submit = document.getElementById("submit");
  const status = document.getElementById("status");
  const canvases = Array.from(root.querySelectorAll("canvas[data-src]"));
  const feedback = document.getElementById("feedback");
  const countdown = document.getElementById("countdown");
  const timeUp = document.getElementById("time-up");
  const breakPanel = document.getElementById("break-panel");
  const ending = document.getElementById("ending");
  const instructions = document.getElementById("instructions-dialog");
  const preview = Boolean(root.dataset.preview);
  const blankMs = Number(root.dataset.blankMs || 0);
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  // A server error is retried with backoff for this long, then the page stops and says so.
  const retryForMs = () => Number(root.dataset.retryForMs || 120000);

  // The case on screen.
  let current = {
    position: Number(root.dataset.position),
    answerUrl: root.dataset.answerUrl,
    key: root.dataset.idempotencyKey,
    practice: Boolean(root.dataset.practice),
    timeLimit: Number(root.dataset.timeLimit || 0),
    secondsToDeadline: root.dataset.secondsToDeadline === "" ? null : Number(root.dataset.secondsToDeadline),
    receivedAt: performance.now(),
    prefetch: (root.dataset.prefetch || "").split(" ").filter(Boolean),
  };
  let shown = false;
  let ended = false;
  let sending = false;
  let timedOut = false;
  let viewers = null;

  // ---- Reading time: counts only while the images are shown and the tab is visible ----

  let activeMs = 0;
  let visibleSince = null;
  function startClock() { if (visibleSince === null && !document.hidden) visibleSince = performance.now(); }
  function stopClock() { if (visibleSince !== null) { activeMs += performance.now() - visibleSince; visibleSince = null; } }
  function readingMs() { stopClock(); const ms = Math.round(activeMs); if (shown) startClock(); return ms; }
  document.addEventListener("visibilitychange", () => { if (!shown) return; document.hidden ? stopClock() : startClock(); });

  // ---- Images: fetched and decoded together; the next case's ahead of time ----

  const cache = new Map(); // url -> promise of the decoded image (the next case's only)
  function load(url) {
    return fetch(url, { credentials: "same-origin" })
      .then((r) => { if (!r.ok) throw new Error("image " + r.status); return r.arrayBuffer(); })
      .then((buffer) => window.decodeGrayPng(buffer))
      .then((image) => window.ReaderViewer.prepare(image));
  }
  function images(urls) {
    const all = urls.map((url) => cache.get(url) || load(url));
    cache.clear();
    return Promise.all(all);
  }
  function prefetch(urls) {
    cache.clear();
    if (window.readerPrefetching === false) return; // bench/bench_viewer.py measures without prefetch
    // Every image of the next case at once, in display order: nothing depends on its source.
    urls.forEach((url) => { const p = load(url); p.catch(() => cache.delete(url)); cache.set(url, p); });
  }

  // Show a case once its images are decoded and the neutral screen has lasted blankMs since
  // `blankFrom` (the moment the previous case was hidden; on the first load, when decoded).
  // Both panes are drawn, still hidden, as soon as the images are decoded (in one task), so the
  // end of the neutral screen only has to make them visible.
  function showCase(urls, blankFrom) {
    return images(urls).then((decoded) => {
      if (ended) return null;
      if (viewers) viewers.load(decoded);
      else {
        viewers = new window.ReaderViewer.ViewerGroup(root, canvases, decoded, { linked: root.dataset.design === "paired" });
        viewers.renderNow();
        window.readerViewers = viewers.debugApi();
      }
      const wait = Math.max(0, (blankFrom === null ? performance.now() : blankFrom) + blankMs - performance.now());
      return new Promise((resolve) => setTimeout(resolve, wait));
    }).then(() => {
      if (ended) return;
      activeMs = 0;
      shown = true;
      root.classList.add("shown");
      startClock();
      startTimeLimit();
      updateSubmit();
      window.dispatchEvent(new CustomEvent("reader:shown", { detail: { position: current.position } }));
      prefetch(current.prefetch);
    }).catch(() => { status.textContent = "The images could not be loaded. Reload the page to try again."; });
  }

  // ---- Time limit: the server keeps the deadline; the page counts down to it ----

  let tick = null;
  function startTimeLimit() {
    timedOut = false;
    if (!current.timeLimit || current.secondsToDeadline === null) { countdown.hidden = true; return; }
    const ends = current.receivedAt + current.secondsToDeadline * 1000;
    countdown.hidden = false;
    const step = () => {
      const left = Math.max(0, Math.ceil((ends - performance.now()) / 1000));
      countdown.textContent = left ? `${left} s left` : "Time is up";
      countdown.classList.toggle("warning", left > 0 && left <= 10);
      if (left) { tick = setTimeout(step, 250); return; }
      timedOut = true;
      root.classList.add("timed-out");
      timeUp.hidden = false;
    };
    step();
  }
  function stopTimeLimit() {
    clearTimeout(tick);
    countdown.hidden = true;
    root.classList.remove("timed-out");
    countdown.classList.remove("warning");
    timeUp.hidden = true;
  }

  // ---- The answer ----

  function value(name) { const el = form.querySelector(`input[name="${name}"]:checked`); return el ? el.value : null; }
  function questions() { return Array.from(form.querySelectorAll("fieldset.question")); }
  function questionValue(fieldset) {
    const text = fieldset.querySelector("input.free-text");
    return text ? text.value.trim() : value("q-" + fieldset.dataset.question) || "";
  }
  // What is still to answer, by the names on screen.
  function missing() {
    const out = [];
    if (form.querySelector("input[name=answer]") && !value("answer")) out.push(root.dataset.design === "paired" ? "which image is synthetic" : "real or synthetic");
    if (form.querySelector("input[name=confidence]") && !value("confidence")) out.push("confidence (1–5)");
    questions().forEach((q) => { if (q.dataset.required && !questionValue(q)) out.push(`${q.dataset.label} (${q.dataset.letter})`); });
    return out;
  }
  function complete() { return missing().length === 0; }
  function updateSubmit() {
    submit.disabled = !complete() || !shown || sending;
    form.querySelectorAll("fieldset.missing").forEach((f) => {
      const text = f.querySelector("input.free-text");
      if (f.querySelector("input:checked") || (text && text.value.trim())) f.classList.remove("missing");
    });
  }
  form.addEventListener("change", updateSubmit);
  form.addEventListener("input", updateSubmit);

  function choose(name, val) {
    const input = form.querySelector(`input[name="${name}"][value="${val}"]`);
    if (input) { input.checked = true; form.dispatchEvent(new Event("change")); }
    return Boolean(input);
  }

  // Enter is the only key that submits, and only a complete answer; a held Enter does not
  // repeat, and Enter on another focused button or link (a viewer tool, log out) presses that.
  function submitByKey(event) {
    const target = event.target;
    if (target instanceof HTMLElement && target !== submit && target.closest("button, a[href]")) return;
    event.preventDefault();
    if (event.repeat || sending) return;
    const gaps = missing();
    if (!gaps.length) { form.requestSubmit(); return; }
    status.textContent = `Still to answer: ${gaps.join(", ")}.`;
    form.querySelectorAll("fieldset[data-row], fieldset.question").forEach((f) => {
      const row = f.dataset.row;
      const empty = row === "answer" ? !value("answer") : row === "confidence" ? !value("confidence") : f.dataset.required && !questionValue(f);
      f.classList.toggle("missing", Boolean(empty));
    });
  }

  // ---- Keys ----

  let armed = null; // a further question whose letter was pressed: the next key picks its choice
  function arm(fieldset) {
    disarm();
    const text = fieldset.querySelector("input.free-text");
    if (text) { text.focus(); return; }
    armed = fieldset;
    fieldset.classList.add("armed");
  }
  function disarm() { if (armed) armed.classList.remove("armed"); armed = null; }

  function openInstructions(open) {
    const show = open === undefined ? instructions.hidden : open;
    instructions.hidden = !show;
    if (show) instructions.querySelector("button").focus();
    else if (instructions.contains(document.activeElement)) document.activeElement.blur();
  }
  root.addEventListener("click", (e) => { if (e.target.closest("[data-reader-action=instructions]")) openInstructions(); });

  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const key = event.key, upper = key.length === 1 ? key.toUpperCase() : key;
    const take = () => event.preventDefault();
    if (ended) { take(); return; }
    if (!instructions.hidden) {
      if (key === "Escape" || upper === "H" || key === "Enter") { take(); openInstructions(false); }
      else if (key !== "Tab") take();
      return;
    }
    if (upper === "H" && !(event.target instanceof HTMLInputElement && event.target.type === "text")) { take(); openInstructions(true); return; }
    if (!breakPanel.hidden) { if (key === "Enter") { take(); continueAfterBreak(); } return; }
    if (!feedback.hidden) { if (key === "Enter") { take(); proceed(); } return; }
    if (!shown) return;
    // Typing a free-text answer must not choose anything.
    if (event.target instanceof HTMLInputElement && event.target.type === "text") {
      if (key === "Enter") submitByKey(event);
      else if (key === "Escape") event.target.blur();
      return;
    }
    if (armed) {
      const fieldset = armed;
      disarm();
      if (key === "Escape") { take(); return; }
      const input = Array.from(fieldset.querySelectorAll("input[type=radio]")).find((i) => i.dataset.key === key);
      if (input) { take(); choose(input.name, input.value); return; }
    }
    const lettered = questions().find((q) => q.dataset.letter === upper);
    if (lettered) { take(); arm(lettered); return; }
    if (root.dataset.design === "paired") {
      if (key === "ArrowLeft" || upper === "L") { take(); choose("answer", "left"); }
      else if (key === "ArrowRight" || upper === "R") { take(); choose("answer", "right"); }
    } else {
      if (upper === "R") { take(); choose("answer", "real"); }
      else if (upper === "S") { take(); choose("answer", "synthetic"); }
      else if (key.length === 1 && "12345".includes(key)) { take(); choose("confidence", key); }
    }
    if (key === "Enter") submitByKey(event);
  });

  // ---- Endings: each its own message; none is retried ----

  function end(reason, message) {
    ended = true;
    shown = false;
    stopClock();
    stopTimeLimit();
    clearTimeout(retryTimer);
    root.classList.remove("shown", "offline");
    root.classList.add("ended");
    const titles = { closed: "The study was closed", session: "You were logged out", gone: "This study is not yours to read", server: "The server is not answering" };
    ending.querySelector(".over-title").textContent = titles[reason] || "Reading stopped";
    ending.querySelector(".ending-text").textContent = message;
    const link = ending.querySelector(".ending-link");
    if (reason === "session") { link.textContent = "Log in again"; link.href = "/login/?next=" + encodeURIComponent(location.pathname); }
    ending.hidden = false;
    feedback.hidden = true;
    breakPanel.hidden = true;
    status.textContent = "";
    submit.disabled = true;
    link.focus();
  }

  // One request with the page's rules: 401/404/410 end the reading; other 4xx are refused and
  // not retried; a 5xx is retried with backoff for retryForMs and then stops; a lost connection
  // is retried for as long as it lasts (the reader sees that it is).
  let retryTimer = null;
  function request(url, options, describe) {
    const started = performance.now();
    return new Promise((resolve, reject) => {
      const attempt = (n) => {
        fetch(url, { credentials: "same-origin", ...options }).then((response) => {
          if (response.status >= 500) { const e = new Error("server"); e.status = response.status; throw e; }
          return response.json().catch(() => ({})).then((data) => ({ response, data }));
        }).then(({ response, data }) => {
          root.classList.remove("offline");
          if (data.ending || [401, 404, 410].includes(response.status)) {
            reject({ ending: data.ending || (response.status === 401 ? "session" : response.status === 410 ? "closed" : "gone"), message: data.error || `The server said ${response.status}.` });
          } else if (!response.ok) reject({ refused: data.error || `The server refused this (${response.status}).` });
          else resolve(data);
        }).catch((error) => {
          if (error && (error.ending || error.refused)) { reject(error); return; }
          const wait = Math.min(30000, 1000 * 2 ** n);
          const server = error && error.status;
          if (server && performance.now() - started + wait > retryForMs()) {
            reject({ ending: "server", message: `The server answered with an error (${error.status}) for ${Math.round((performance.now() - started) / 1000)} s. ${describe.kept} Reload the page later to carry on.` });
            return;
          }
          status.textContent = server
            ? `The server answered with an error (${error.status}): ${describe.retrying} in ${Math.round(wait / 1000)} s.`
            : `Connection lost: ${describe.retrying} in ${Math.round(wait / 1000)} s.`;
          root.classList.add("offline");
          retryTimer = setTimeout(() => attempt(n + 1), wait);
        });
      };
      attempt(0);
    });
  }

  function storageKey(position) { return root.dataset.pendingPrefix + position; }

  // The answer goes to localStorage first: a lost connection or a reload cannot lose it,
  // and the retry repeats the same idempotency key so it is stored once.
  function send(pending) {
    sending = true;
    return request(pending.url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(pending.body),
    }, { retrying: "your answer is kept and will be sent again", kept: "Your answer is kept in this browser." }).then((data) => {
      localStorage.removeItem(pending.storageKey);
      sending = false;
      return data;
    }, (error) => {
      sending = false;
      if (error.ending === "closed" || error.refused) localStorage.removeItem(pending.storageKey); // never to be stored
      throw error;
    });
  }

  let nextCaseUrl = null;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (sending || !complete() || !shown) return;
    submit.disabled = true;
    disarm();
    const pending = {
      storageKey: storageKey(current.position),
      url: current.answerUrl,
      body: {
        idempotency_key: current.key,
        answer: value("answer"),
        confidence: value("confidence"),
        questions: Object.fromEntries(questions().map((q) => [q.dataset.question, questionValue(q)])),
        reading_ms: readingMs(),
        client: {
          timed_out: timedOut,
          viewport: [window.innerWidth, window.innerHeight],
          device_pixel_ratio: window.devicePixelRatio || 1,
          viewer: viewers.snapshot(), // each pane's window, zoom, pan and invert as answered, and tool use
          display_check: displayCheck(),
        },
      },
    };
    if (!preview) localStorage.setItem(pending.storageKey, JSON.stringify(pending));
    status.textContent = preview ? "Checking…" : "Saving…";
    // A scored case leaves the screen at once: the neutral screen runs while the answer is saved.
    const waitsForFeedback = current.practice || preview;
    const hiddenAt = performance.now();
    if (!waitsForFeedback) hide();
    send(pending).then((data) => {
      status.textContent = preview ? "" : "Saved.";
      nextCaseUrl = data.next_case || null;
      if (data.feedback || data.would_store) showFeedback(data);
      else advance(hiddenAt);
    }, (error) => {
      if (error.ending) { end(error.ending, error.message); return; }
      status.textContent = error.refused;
      unhide();
    });
  });

  function hide() { shown = false; stopClock(); root.classList.remove("shown"); }
  function unhide() { shown = true; root.classList.add("shown"); startClock(); updateSubmit(); }

  // Practice cases: the server says whether the answer was right. Preview: what would have been stored.
  function showFeedback(data) {
    const parts = [];
    if (data.feedback) {
      const result = data.feedback;
      const truth = root.dataset.design === "paired" ? `the synthetic image was on the ${result.truth}` : `this image is ${result.truth}`;
      parts.push(`${result.correct ? "Correct" : "Not quite"}: ${truth}.`);
      feedback.classList.toggle("correct", result.correct);
    } else feedback.classList.add("correct");
    if (data.would_store) {
      const stored = Object.entries(data.would_store).map(([k, v]) => `${k} = ${v}`).join(", ");
      parts.push(`Preview, nothing stored. A reader's answer would be stored as: ${stored}.`);
    }
    feedback.querySelector(".feedback-text").textContent = parts.join(" ");
    feedback.hidden = false;
    document.getElementById("feedback-continue").focus();
  }
  function proceed() {
    if (feedback.hidden) return;
    feedback.hidden = true;
    if (document.activeElement) document.activeElement.blur();
    const hiddenAt = performance.now();
    hide();
    advance(hiddenAt);
  }
  document.getElementById("feedback-continue").addEventListener("click", proceed);

  // ---- The next case ----

  function advance(hiddenAt, query = "") {
    hide();
    stopTimeLimit();
    const url = (nextCaseUrl || root.dataset.nextUrl) + query;
    return request(url, { headers: { Accept: "application/json" } }, { retrying: "the next case will be asked for again", kept: "Your answers so far are saved." })
      .then((data) => {
        if (data.kind === "case") { apply(data); return showCase(data.images, hiddenAt); }
        if (data.kind === "break") { showBreak(data); return null; }
        // Finished, not ready, a wash-out to wait for, or the reveal of a grade-then-reveal study
        // (told only now, with the next block's own page, keys and instructions): a page of its own.
        window.location.assign(data.url);
        return null;
      }, (error) => {
        if (error.ending) end(error.ending, error.message);
        else status.textContent = error.refused;
      });
  }

  function showBreak(data) {
    breakPanel.querySelector(".break-text").textContent = `You have read ${data.done} of ${data.total} cases. Rest your eyes for a moment; your answers so far are saved.`;
    breakPanel.hidden = false;
    root.classList.add("on-break");
    document.getElementById("continue").focus();
  }
  function continueAfterBreak() {
    breakPanel.hidden = true;
    root.classList.remove("on-break");
    if (document.activeElement) document.activeElement.blur();
    advance(performance.now(), "?continue=1");
  }
  document.getElementById("continue").addEventListener("click", continueAfterBreak);

  // Put a case description on the page (the images follow in showCase).
  function apply(data) {
    current = {
      position: data.position,
      answerUrl: data.answer_url,
      key: data.idempotency_key,
      practice: data.practice,
      timeLimit: Number(data.time_limit || 0),
      secondsToDeadline: data.seconds_to_deadline,
      receivedAt: performance.now(),
      prefetch: data.prefetch,
    };
    nextCaseUrl = null;
    Object.assign(root.dataset, { position: String(data.position), answerUrl: data.answer_url, idempotencyKey: data.idempotency_key, practice: data.practice ? "1" : "" });
    if (data.reader_design && data.reader_design !== root.dataset.design) {
      root.classList.replace(root.dataset.design, data.reader_design);
      root.dataset.design = data.reader_design;
    }
    canvases.forEach((c, i) => { c.dataset.src = data.images[i]; });
    $(".progress-text").textContent = data.progress_text;
    const bar = $(".progress");
    bar.setAttribute("aria-valuenow", data.done);
    bar.setAttribute("aria-valuemax", data.total);
    paintProgress();
    const estimate = data.seconds_left_estimate;
    $(".time-left").textContent = estimate ? `about ${estimate < 90 ? estimate + " s" : Math.round(estimate / 60) + " min"} to finish` : "";
    $(".badge.practice").hidden = !data.practice;
    document.title = document.title.replace(/· .*$/, "· " + data.progress_text.toLowerCase());
    fields.innerHTML = data.fields_html;
    submit.disabled = true;
    status.textContent = "";
    // After revising an earlier case the address is the reading page's again: a reload resumes.
    if (root.dataset.readUrl && location.pathname !== root.dataset.readUrl) history.replaceState(null, "", root.dataset.readUrl);
  }

  // The fill's width from the progress bar's own numbers (no inline style in the markup).
  function paintProgress() {
    const bar = $(".progress"), max = Number(bar.getAttribute("aria-valuemax")) || 0;
    $(".progress-fill").style.width = (max ? 100 * Number(bar.getAttribute("aria-valuenow")) / max : 0) + "%";
  }

  // ---- Display check (instructions page) result, recorded with every answer ----

  function displayCheck() {
    if (!root.dataset.displayCheck) return null;
    try { return JSON.parse(localStorage.getItem(`display-check:${root.dataset.user}:${root.dataset.study}`)); } catch (e) { return null; }
  }

  // ---- Start ----

  paintProgress();
  const unsentKey = preview ? null : Object.keys(localStorage).find((k) => k.startsWith(root.dataset.pendingPrefix));
  if (unsentKey) {
    // An answer given before a reload or a crash and never confirmed is sent again now.
    status.textContent = "Sending your previous answer…";
    send(JSON.parse(localStorage.getItem(unsentKey))).then(() => { status.textContent = "Saved."; advance(performance.now()); }, (error) => {
      if (error.ending) end(error.ending, error.message);
      else { status.textContent = error.refused; showCase(canvases.map((c) => c.dataset.src), null); }
    });
  } else {
    showCase(canvases.map((c) => c.dataset.src), null);
  }
})();
