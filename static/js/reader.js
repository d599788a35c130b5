// Reading page: show a case's images together, time the reading, store the answer exactly once.
"use strict";

(function () {
  const root = document.getElementById("reader");
  if (!root) return;
  const form = document.getElementById("answer-form");
  const submit = document.getElementById("submit");
  const status = document.getElementById("status");
  const canvases = Array.from(root.querySelectorAll("canvas[data-src]"));
  const pendingKey = root.dataset.pendingPrefix + root.dataset.position;
  const feedback = document.getElementById("feedback");
  const countdown = document.getElementById("countdown");
  const timeLimitMs = Number(root.dataset.timeLimit || 0) * 1000;
  let timedOut = false;

  // Reading time counts only while the images are shown and the tab is visible.
  let activeMs = 0;
  let visibleSince = null;
  function startClock() { if (visibleSince === null && !document.hidden) visibleSince = performance.now(); }
  function stopClock() { if (visibleSince !== null) { activeMs += performance.now() - visibleSince; visibleSince = null; } }
  function readingMs() { stopClock(); const ms = Math.round(activeMs); startClock(); return ms; }
  let shown = false;
  document.addEventListener("visibilitychange", () => { if (!shown) return; document.hidden ? stopClock() : startClock(); });

  // Every image is fetched and decoded before any is drawn, so neither source appears first:
  // the viewer draws all panes in one task, then the page shows them together.
  let viewers = null;
  Promise.all(canvases.map((c) => fetch(c.dataset.src, { credentials: "same-origin" })
    .then((r) => { if (!r.ok) throw new Error("image " + r.status); return r.arrayBuffer(); })
    .then((buffer) => window.decodeGrayPng(buffer))))
    .then((images) => {
      viewers = new window.ReaderViewer.ViewerGroup(root, canvases, images, { linked: root.dataset.design === "paired" });
      viewers.renderNow();
      window.readerViewers = viewers.debugApi();
      // A neutral screen of the study's length separates cases, the same for every case.
      return new Promise((resolve) => setTimeout(resolve, Number(root.dataset.blankMs || 0)));
    })
    .then(() => {
      shown = true;
      root.classList.add("shown");
      startClock();
      startTimeLimit();
      updateSubmit();
    })
    .catch(() => { status.textContent = "The images could not be loaded. Reload the page to try again."; });

  // With a time limit, the images are hidden when it runs out; an answer is still required.
  function startTimeLimit() {
    if (!timeLimitMs) return;
    const ends = performance.now() + timeLimitMs;
    countdown.hidden = false;
    const tick = () => {
      const left = Math.max(0, Math.ceil((ends - performance.now()) / 1000));
      countdown.textContent = left ? `${left} s left` : "Time is up: please answer";
      if (left) { setTimeout(tick, 250); return; }
      timedOut = true;
      root.classList.add("timed-out");
    };
    tick();
  }

  function value(name) { const el = form.querySelector(`input[name="${name}"]:checked`); return el ? el.value : null; }
  const questions = Array.from(form.querySelectorAll("fieldset.question"));
  function questionValue(fieldset) {
    const text = fieldset.querySelector("input.free-text");
    return text ? text.value.trim() : value("q-" + fieldset.dataset.question) || "";
  }
  function complete() {
    // The grading block of a grade-then-reveal study asks its grading questions alone.
    return (root.dataset.design === "grade" || value("answer")) && (root.dataset.design !== "mixed" || value("confidence"))
      && questions.every((q) => !q.dataset.required || questionValue(q));
  }
  function updateSubmit() { submit.disabled = !complete() || !shown; }
  form.addEventListener("change", updateSubmit);
  form.addEventListener("input", updateSubmit);

  function choose(name, val) {
    const input = form.querySelector(`input[name=${name}][value="${val}"]`);
    if (input) { input.checked = true; form.dispatchEvent(new Event("change")); }
  }
  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey || !shown) return;
    const key = event.key;
    if (!feedback.hidden) { if (key === "Enter") { event.preventDefault(); proceed(); } return; }
    // Typing a free-text answer must not choose anything.
    if (event.target instanceof HTMLInputElement && event.target.type === "text") {
      if (key === "Enter") submitByKey(event);
      return;
    }
    if (root.dataset.design === "paired") {
      if (key === "ArrowLeft" || key === "l" || key === "L") choose("answer", "left");
      else if (key === "ArrowRight" || key === "r" || key === "R") choose("answer", "right");
    } else if (root.dataset.design === "mixed") {
      if (key === "r" || key === "R") choose("answer", "real");
      else if (key === "s" || key === "S") choose("answer", "synthetic");
      else if ("12345".includes(key) && key.length === 1) choose("confidence", key);
    }
    if (key === "Enter") submitByKey(event);
  });

  // Enter is the only key that submits, and only a complete answer; a held Enter does not
  // repeat, and Enter on another focused button or link (a viewer tool, log out) presses that.
  function submitByKey(event) {
    const target = event.target;
    if (target instanceof HTMLElement && target !== submit && target.closest("button, a[href]")) return;
    event.preventDefault();
    if (!event.repeat && complete()) form.requestSubmit();
  }

  // Practice cases only: the server says whether the answer was right before moving on.
  let nextUrl = null;
  function showFeedback(result) {
    const truth = root.dataset.design === "paired" ? `the synthetic image was on the ${result.truth}` : `this image is ${result.truth}`;
    feedback.querySelector(".feedback-text").textContent = `${result.correct ? "Correct" : "Not quite"}: ${truth}.`;
    feedback.classList.toggle("correct", result.correct);
    feedback.hidden = false;
    document.getElementById("continue").focus();
  }
  function proceed() { if (nextUrl) window.location.assign(nextUrl); }
  document.getElementById("continue").addEventListener("click", proceed);

  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  let sending = false;

  // The answer goes to localStorage first: a lost connection or a reload cannot lose it,
  // and the retry repeats the same idempotency key so it is stored once.
  function send(pending, attempt) {
    return fetch(pending.url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(pending.body),
    }).then((response) => {
      if (response.status >= 500) throw new Error("server " + response.status);
      return response.json().then((data) => ({ ok: response.ok, data }));
    }).then(({ ok, data }) => {
      localStorage.removeItem(pending.storageKey);
      if (!ok) { sending = false; status.textContent = data.error || "The answer was refused."; return; }
      status.textContent = "Saved.";
      nextUrl = data.next;
      if (data.feedback) showFeedback(data.feedback); else proceed();
    }).catch(() => {
      const wait = Math.min(30000, 1000 * 2 ** attempt);
      status.textContent = `Connection lost: your answer is kept and will be sent again in ${Math.round(wait / 1000)} s.`;
      root.classList.add("offline");
      setTimeout(() => send(pending, attempt + 1), wait);
    });
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (sending || !complete() || !shown) return;
    sending = true;
    submit.disabled = true;
    const pending = {
      storageKey: pendingKey,
      url: root.dataset.answerUrl,
      body: {
        idempotency_key: root.dataset.idempotencyKey,
        answer: value("answer"),
        confidence: value("confidence"),
        questions: Object.fromEntries(questions.map((q) => [q.dataset.question, questionValue(q)])),
        reading_ms: readingMs(),
        client: {
          timed_out: timedOut,
          viewport: [window.innerWidth, window.innerHeight],
          device_pixel_ratio: window.devicePixelRatio || 1,
          viewer: viewers.snapshot(), // each pane's window, zoom, pan and invert as answered, and tool use
        },
      },
    };
    localStorage.setItem(pendingKey, JSON.stringify(pending));
    status.textContent = "Saving…";
    send(pending, 0);
  });

  // An answer given before a reload or a crash and never confirmed is sent again now.
  const unsentKey = Object.keys(localStorage).find((k) => k.startsWith(root.dataset.pendingPrefix));
  if (unsentKey) {
    sending = true;
    status.textContent = "Sending your previous answer…";
    send(JSON.parse(localStorage.getItem(unsentKey)), 0);
  }
})();
