// Display check before the first case (ViewDEX-style): grey steps and low-contrast squares the
// reader confirms. The answer stays in this browser and the reading page records it with every answer.
"use strict";

(function () {
  const box = document.getElementById("display-check");
  if (!box) return;
  const storageKey = box.dataset.storageKey;
  const begin = document.getElementById("begin");
  const result = box.querySelector(".check-result");
  const canvas = box.querySelector("canvas");

  // 18 steps from black to white; below, a black patch holding a 5 % square and a white patch
  // holding a 95 % square (the SMPTE test pattern's contrast checks).
  const ratio = window.devicePixelRatio || 1;
  const cssWidth = canvas.width, cssHeight = canvas.height;
  canvas.style.width = cssWidth + "px";
  canvas.style.height = cssHeight + "px";
  canvas.width = Math.round(cssWidth * ratio);
  canvas.height = Math.round(cssHeight * ratio);
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  const grey = (g) => `rgb(${g},${g},${g})`;
  const steps = 18, stepWidth = cssWidth / steps;
  for (let i = 0; i < steps; i++) {
    ctx.fillStyle = grey(Math.round((255 * i) / (steps - 1)));
    ctx.fillRect(Math.floor(i * stepWidth), 0, Math.ceil(stepWidth), 110);
  }
  const patch = (x, outer, inner) => {
    ctx.fillStyle = grey(outer);
    ctx.fillRect(x, 120, 160, 80);
    ctx.fillStyle = grey(inner);
    ctx.fillRect(x + 60, 140, 40, 40);
  };
  patch(cssWidth / 2 - 180, 0, 13);
  patch(cssWidth / 2 + 20, 255, 242);

  function stored() { try { return JSON.parse(localStorage.getItem(storageKey)); } catch (e) { return null; } }
  function show(record) {
    begin.hidden = !record;
    if (record) result.textContent = record.seen ? "Recorded: you see every step and both squares." : "Recorded: you cannot see every step or square. You may still read; the coordinator will see this with your answers.";
  }
  box.addEventListener("click", (e) => {
    const button = e.target.closest("[data-display-check]");
    if (!button) return;
    const record = { seen: button.dataset.displayCheck === "yes", at: new Date().toISOString(), screen: [screen.width, screen.height], device_pixel_ratio: ratio };
    localStorage.setItem(storageKey, JSON.stringify(record));
    show(record);
    begin.focus();
  });
  show(stored());
})();
