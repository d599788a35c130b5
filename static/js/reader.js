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

  // Reading time counts only while the images are shown and the tab is visible.
  let activeMs = 0;
  let visibleSince = null;
  function startClock() { if (visibleSince === null && !document.hidden) visibleSince = performance.now(); }
  function stopClock() { if (visibleSince !== null) { activeMs += performance.now() - visibleSince; visibleSince = null; } }
  function readingMs() { stopClock(); const ms = Math.round(activeMs); startClock(); return ms; }
  let shown = false;
  document.addEventListener("visibilitychange", () => { if (!shown) return; document.hidden ? stopClock() : startClock(); });

  function fit(canvas, bitmap) {
    const box = canvas.parentElement.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    const side = Math.max(1, Math.floor(Math.min(box.width, box.height - 28)));
    canvas.style.width = canvas.style.height = side + "px";
    canvas.width = canvas.height = Math.round(side * ratio);
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = "high";
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    const scale = Math.min(canvas.width / bitmap.width, canvas.height / bitmap.height);
    const w = bitmap.width * scale, h = bitmap.height * scale;
    ctx.drawImage(bitmap, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
  }

  // Every image is fetched and decoded before any is drawn, so neither source appears first.
  let bitmaps = [];
  Promise.all(canvases.map((c) => fetch(c.dataset.src, { credentials: "same-origin" })
    .then((r) => { if (!r.ok) throw new Error("image " + r.status); return r.blob(); })
    .then((blob) => createImageBitmap(blob))))
    .then((loaded) => {
      bitmaps = loaded;
      canvases.forEach((c, i) => fit(c, bitmaps[i]));
      shown = true;
      root.classList.add("shown");
      startClock();
    })
    .catch(() => { status.textContent = "The images could not be loaded. Reload the page to try again."; });
  window.addEventListener("resize", () => { if (shown) canvases.forEach((c, i) => fit(c, bitmaps[i])); });

  function value(name) { const el = form.querySelector(`input[name=${name}]:checked`); return el ? el.value : null; }
  function complete() { return value("answer") && (root.dataset.design !== "mixed" || value("confidence")); }
  form.addEventListener("change", () => { submit.disabled = !complete() || !shown; });

  function choose(name, val) {
    const input = form.querySelector(`input[name=${name}][value="${val}"]`);
    if (input) { input.checked = true; form.dispatchEvent(new Event("change")); }
  }
  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey || !shown) return;
    const key = event.key;
    if (root.dataset.design === "paired") {
      if (key === "ArrowLeft" || key === "l" || key === "L") choose("answer", "left");
      else if (key === "ArrowRight" || key === "r" || key === "R") choose("answer", "right");
    } else {
      if (key === "r" || key === "R") choose("answer", "real");
      else if (key === "s" || key === "S") choose("answer", "synthetic");
      else if ("12345".includes(key) && key.length === 1) choose("confidence", key);
    }
    if (key === "Enter" && complete()) { event.preventDefault(); form.requestSubmit(); }
  });

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
      window.location.assign(data.next);
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
        reading_ms: readingMs(),
        client: { viewport: [window.innerWidth, window.innerHeight], device_pixel_ratio: window.devicePixelRatio || 1 },
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
