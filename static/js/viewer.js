// Canvas viewer for the reading page: window/level on the stored 8- or 16-bit values, zoom,
// pan, invert, a pixel loupe, full screen, and linked panes in the paired design.
//
// Blinding: every pane runs exactly the same code on its own pixels. Nothing here knows,
// stores, logs or shows anything but pixel-derived state; both panes are built, drawn and
// shown in the same task.
"use strict";

(function (global) {
  // Presets are percentiles of the image's own histogram: radiographs have no fixed units.
  const PRESETS = [
    { name: "full", label: "Full", key: "6", low: 0.5, high: 99.5 },
    { name: "mid", label: "Mid", key: "7", low: 10, high: 90 },
    { name: "soft", label: "Soft", key: "8", low: 1, high: 60 },
    { name: "bone", label: "Bone", key: "9", low: 40, high: 99.9 },
  ];
  const MIN_ZOOM = 0.5; // relative to fit
  const MAX_SCALE = 40; // device pixels per image pixel
  const BLOCKS_FROM = 3; // from this magnification pixels are drawn as blocks, not interpolated
  const WHEEL_GESTURE_MS = 400; // wheel events closer than this count as one zoom
  const LOUPE_SIZE = 165; // CSS pixels
  const LOUPE_MAX_PIXELS = 15; // image pixels across the loupe at most (odd: one centre pixel)
  const TOOLS = ["window_level", "zoom", "pan", "invert", "preset", "reset", "fit", "one_to_one", "link", "loupe", "fullscreen", "help"];

  const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
  function gray(g) { return LITTLE_ENDIAN ? (0xff000000 | (g * 0x010101)) >>> 0 : ((g * 0x01010100) | 0xff) >>> 0; }
  const BLACK = gray(0);

  function clamp(x, lo, hi) { return x < lo ? lo : x > hi ? hi : x; }
  function round(x, digits) { const f = 10 ** digits; return Math.round(x * f) / f; }

  // ---- Image statistics: histogram, percentile windows, a box-filtered pyramid ----

  function histogramOf(image) {
    const hist = new Uint32Array(1 << image.bitDepth);
    const px = image.pixels;
    for (let i = 0; i < px.length; i++) hist[px[i]]++;
    return hist;
  }

  function percentile(hist, total, p) {
    const target = Math.max(1, total * p / 100);
    let seen = 0;
    for (let v = 0; v < hist.length; v++) { seen += hist[v]; if (seen >= target) return v; }
    return hist.length - 1;
  }

  // One window for several images from their pooled histogram: linked panes share it, and it
  // does not depend on which pane is which.
  function presetWindow(viewers, preset) {
    const pooled = new Uint32Array(viewers[0].hist.length);
    let total = 0;
    for (const v of viewers) { for (let i = 0; i < pooled.length; i++) pooled[i] += v.hist[i]; total += v.pixels.length; }
    const lo = percentile(pooled, total, preset.low), hi = percentile(pooled, total, preset.high);
    return { center: (lo + hi + 1) / 2, width: Math.max(1, hi - lo + 1) };
  }

  function halve(level) {
    const w = Math.max(1, level.width >> 1), h = Math.max(1, level.height >> 1);
    const src = level.data, sw = level.width, out = new Uint16Array(w * h);
    for (let y = 0; y < h; y++) {
      const r0 = 2 * y * sw, r1 = Math.min(2 * y + 1, level.height - 1) * sw;
      for (let x = 0; x < w; x++) {
        const c0 = 2 * x, c1 = Math.min(2 * x + 1, sw - 1);
        out[y * w + x] = (src[r0 + c0] + src[r0 + c1] + src[r1 + c0] + src[r1 + c1] + 2) >> 2;
      }
    }
    return { width: w, height: h, data: out };
  }

  // Minified views sample the level nearest above the display size, so they do not alias.
  function pyramidOf(image) {
    const levels = [{ width: image.width, height: image.height, data: image.pixels }];
    while (levels[levels.length - 1].width > 64 && levels[levels.length - 1].height > 64) levels.push(halve(levels[levels.length - 1]));
    return levels;
  }

  // ---- One pane ----

  class Viewer {
    constructor(canvas, image) {
      this.canvas = canvas;
      this.ctx = canvas.getContext("2d", { alpha: false });
      this.setImage(image);
      this.resize();
    }

    // A new case's image in the same pane: the view starts fitted, the caller restores preferences.
    setImage(image) {
      this.width = image.width;
      this.height = image.height;
      this.bitDepth = image.bitDepth;
      this.pixels = image.pixels;
      this.hist = image.hist || histogramOf(image);
      this.levels = image.levels || pyramidOf(image);
      if (!this.lut || this.lut.length !== 1 << image.bitDepth) this.lut = new Uint32Array(1 << image.bitDepth);
      // View state: window in stored units, zoom relative to fit, view centre in image pixels.
      this.state = { center: 0, width: 1, zoom: 1, cx: image.width / 2, cy: image.height / 2, invert: false, preset: null };
      this.geometryDirty = true;
      this.windowDirty = true;
    }

    // Backing store in device pixels, so one stored pixel is never smeared by CSS scaling.
    resize() {
      const rect = this.canvas.getBoundingClientRect();
      const ratio = global.devicePixelRatio || 1;
      const w = Math.max(1, Math.round(rect.width * ratio)), h = Math.max(1, Math.round(rect.height * ratio));
      this.cssRatio = ratio;
      if (w === this.canvas.width && h === this.canvas.height && this.frame) return false;
      this.canvas.width = w;
      this.canvas.height = h;
      this.frame = this.ctx.createImageData(w, h);
      this.out = new Uint32Array(this.frame.data.buffer);
      this.geometryDirty = true;
      return true;
    }

    fitScale() { return Math.min(this.canvas.width / this.width, this.canvas.height / this.height); }
    scale() { return this.fitScale() * this.state.zoom; }

    // Device pixel (canvas coordinates) to continuous image coordinates; pixel i spans [i, i+1).
    toImage(dx, dy) {
      const s = this.scale();
      return [(dx - this.canvas.width / 2) / s + this.state.cx, (dy - this.canvas.height / 2) / s + this.state.cy];
    }

    setWindow(center, width, preset) {
      const range = 1 << this.bitDepth;
      this.state.center = clamp(center, 0, range);
      this.state.width = clamp(width, 1, 2 * range);
      this.state.preset = preset || null;
      if (preset) this.lastPreset = preset; // what the next case opens with, after a custom window too
      this.windowDirty = true;
    }

    setInvert(on) { this.state.invert = on; this.windowDirty = true; }

    setView(zoom, cx, cy) {
      // Down to 1:1 even where that is smaller than MIN_ZOOM (an image smaller than its pane).
      const least = Math.min(MIN_ZOOM, 1 / this.fitScale());
      this.state.zoom = clamp(zoom, least, Math.max(least, MAX_SCALE / this.fitScale()));
      // The view centre stays on the image, so no pan can lose it off screen.
      this.state.cx = clamp(cx, 0, this.width);
      this.state.cy = clamp(cy, 0, this.height);
      this.geometryDirty = true;
    }

    // Geometry stage: resample the stored values onto the device pixels the image covers.
    // Runs on zoom, pan and resize only; window/level changes reuse the result.
    resample() {
      const cw = this.canvas.width, ch = this.canvas.height, s = this.scale();
      const { cx, cy } = this.state;
      const x0 = clamp(Math.ceil(cw / 2 - cx * s - 0.5), 0, cw), x1 = clamp(Math.ceil(cw / 2 + (this.width - cx) * s - 0.5), 0, cw);
      const y0 = clamp(Math.ceil(ch / 2 - cy * s - 0.5), 0, ch), y1 = clamp(Math.ceil(ch / 2 + (this.height - cy) * s - 0.5), 0, ch);
      this.rect = { x0, y0, w: Math.max(0, x1 - x0), h: Math.max(0, y1 - y0) };
      const count = this.rect.w * this.rect.h;
      if (!this.samples || this.samples.length < count) this.samples = new Uint16Array(count);
      if (count === 0) return;
      if (s >= BLOCKS_FROM) this.sampleNearest(s);
      else this.sampleBilinear(s);
    }

    sampleNearest(s) {
      const { x0, y0, w, h } = this.rect, cw = this.canvas.width, ch = this.canvas.height;
      const cols = new Int32Array(w), data = this.pixels, out = this.samples;
      for (let x = 0; x < w; x++) cols[x] = clamp(Math.floor((x0 + x + 0.5 - cw / 2) / s + this.state.cx), 0, this.width - 1);
      let i = 0;
      for (let y = 0; y < h; y++) {
        const row = clamp(Math.floor((y0 + y + 0.5 - ch / 2) / s + this.state.cy), 0, this.height - 1) * this.width;
        for (let x = 0; x < w; x++) out[i++] = data[row + cols[x]];
      }
    }

    // Bilinear interpolation on the pyramid level just above display resolution.
    sampleBilinear(s) {
      const { x0, y0, w, h } = this.rect, cw = this.canvas.width, ch = this.canvas.height;
      const n = clamp(Math.floor(Math.log2(1 / s)), 0, this.levels.length - 1);
      const level = this.levels[n], lw = level.width, lh = level.height, data = level.data;
      const kx = lw / this.width, ky = lh / this.height;
      const axis = (count, start, size, centre, k, limit) => {
        const a = new Int32Array(count), b = new Int32Array(count), f = new Float32Array(count);
        for (let i = 0; i < count; i++) {
          const u = clamp(((start + i + 0.5 - size / 2) / s + centre) * k - 0.5, 0, limit - 1);
          const i0 = Math.floor(u);
          a[i] = i0; b[i] = Math.min(i0 + 1, limit - 1); f[i] = u - i0;
        }
        return [a, b, f];
      };
      const [ca, cb, cf] = axis(w, x0, cw, this.state.cx, kx, lw);
      const [ra, rb, rf] = axis(h, y0, ch, this.state.cy, ky, lh);
      const out = this.samples;
      let i = 0;
      for (let y = 0; y < h; y++) {
        const r0 = ra[y] * lw, r1 = rb[y] * lw, fy = rf[y];
        for (let x = 0; x < w; x++) {
          const p = data[r0 + ca[x]], q = data[r0 + cb[x]], r = data[r1 + ca[x]], t = data[r1 + cb[x]];
          const top = p + (q - p) * cf[x], bottom = r + (t - r) * cf[x];
          out[i++] = top + (bottom - top) * fy + 0.5; // Uint16Array truncates: this rounds
        }
      }
    }

    // Window stage: the look-up table maps every possible stored value to a gray level.
    buildLut() {
      const { center, width, invert } = this.state;
      const lut = this.lut, lo = center - width / 2, k = 255 / width;
      const first = clamp(Math.ceil(lo), 0, lut.length), last = clamp(Math.floor(lo + width), first, lut.length);
      lut.fill(gray(invert ? 255 : 0), 0, first);
      for (let v = first; v < last; v++) {
        const g = clamp(Math.round((v - lo) * k), 0, 255);
        lut[v] = gray(invert ? 255 - g : g);
      }
      lut.fill(gray(invert ? 0 : 255), last);
    }

    render() {
      if (!this.geometryDirty && !this.windowDirty) return;
      const full = this.geometryDirty;
      if (this.geometryDirty) this.resample();
      if (this.windowDirty) this.buildLut();
      const { x0, y0, w, h } = this.rect, cw = this.canvas.width, out = this.out, lut = this.lut, samples = this.samples;
      if (full) out.fill(BLACK);
      // Row views keep the inner loop to one index, which V8 runs markedly faster.
      for (let y = 0; y < h; y++) {
        const start = (y0 + y) * cw + x0;
        const dst = out.subarray(start, start + w), src = samples.subarray(y * w, y * w + w);
        for (let x = 0; x < w; x++) dst[x] = lut[src[x]];
      }
      // After a window change only the image's rectangle needs copying to the canvas.
      if (full) this.ctx.putImageData(this.frame, 0, 0);
      else if (w && h) this.ctx.putImageData(this.frame, 0, 0, x0, y0, w, h);
      this.geometryDirty = this.windowDirty = false;
    }

    // The stored value at an image pixel, for the loupe and tests.
    valueAt(x, y) { return this.pixels[y * this.width + x]; }

    snapshot() {
      const s = this.state;
      return {
        window_center: round(s.center, 1),
        window_width: round(s.width, 1),
        zoom: round(s.zoom, 4),
        pixel_scale: round(this.scale() / this.cssRatio, 4), // CSS pixels per image pixel
        pan: [round(s.cx / this.width, 4), round(s.cy / this.height, 4)], // view centre, fraction of the image
        invert: s.invert,
        preset: s.preset,
      };
    }
  }

  // ---- The panes of one case, their tools and keys ----

  class ViewerGroup {
    constructor(root, canvases, images, options) {
      this.root = root;
      this.viewers = canvases.map((c, i) => new Viewer(c, images[i]));
      this.linked = this.viewers.length > 1 && options.linked !== false;
      this.active = this.viewers[0];
      this.tools = Object.fromEntries(TOOLS.map((t) => [t, 0]));
      this.help = root.querySelector(".viewer-help");
      this.panes = root.querySelector(".panes");
      this.toolbar = root.querySelector(".viewer-bar");
      this.frameRequest = 0;
      this.drag = null;
      this.pointer = null; // {viewer, x, y (device pixels on its canvas), clientX, clientY}
      this.loupeHeld = false;
      this.loupeSticky = false;
      this.lastWheel = 0;
      this.applyPreset(this.active, PRESETS[0], false);
      this.viewers.forEach((v) => this.listen(v));
      this.listenKeys();
      this.listenToolbar();
      // Resizing clears a canvas, so redraw before this frame is painted, not in the next one.
      this.resizeObserver = new ResizeObserver(() => { if (this.viewers.map((v) => v.resize()).some(Boolean)) this.renderNow(); });
      this.viewers.forEach((v) => this.resizeObserver.observe(v.canvas));
      this.updateChrome();
    }

    // The next case in the same panes: link state, each pane's preset and invert, the loupe
    // and full screen carry over; zoom and pan start fitted; tool counts start again.
    load(images) {
      const kept = this.viewers.map((v) => ({ preset: PRESETS.find((p) => p.name === (v.state.preset || v.lastPreset)) || PRESETS[0], invert: v.state.invert }));
      this.viewers.forEach((v, i) => { v.setImage(images[i]); v.setInvert(kept[i].invert); });
      this.tools = Object.fromEntries(TOOLS.map((t) => [t, 0]));
      this.drag = null;
      this.active = this.viewers[0]; // each case starts on the first pane, as on a fresh page
      if (!this.pointer) this.pointerSeen = false; // until the mouse moves, the loupe looks at the centre
      if (this.linked) this.applyPreset(this.active, kept[this.viewers.indexOf(this.active)].preset, false);
      else this.viewers.forEach((v, i) => this.applyPreset(v, kept[i].preset, false));
      this.renderNow();
    }

    targets(viewer) { return this.linked ? this.viewers : [viewer]; }
    count(tool) { this.tools[tool] += 1; }

    // Coalesce every change into at most one render per frame.
    invalidate() {
      if (!this.frameRequest) this.frameRequest = requestAnimationFrame(() => this.renderNow());
    }

    renderNow() {
      if (this.frameRequest) cancelAnimationFrame(this.frameRequest);
      this.frameRequest = 0;
      for (const v of this.viewers) v.render();
      this.updateChrome();
      this.drawLoupe();
    }

    // ---- Actions; each applies to the active pane, or to all panes when linked ----

    applyPreset(viewer, preset, counted = true) {
      if (counted) this.count("preset");
      if (this.linked) {
        const w = presetWindow(this.viewers, preset);
        this.viewers.forEach((v) => v.setWindow(w.center, w.width, preset.name));
      } else {
        const w = presetWindow([viewer], preset);
        viewer.setWindow(w.center, w.width, preset.name);
      }
      this.invalidate();
    }

    cyclePreset(viewer, step) {
      const at = PRESETS.findIndex((p) => p.name === viewer.state.preset);
      this.applyPreset(viewer, PRESETS[(at + step + PRESETS.length) % PRESETS.length]);
    }

    windowBy(viewer, dx, dy) {
      const { center, width } = viewer.state;
      const range = 1 << viewer.bitDepth;
      // Right widens (less contrast), up brightens; level speed follows the window width.
      const newWidth = width * Math.exp(dx / 200);
      const newCenter = center + dy * Math.max(width, range / 16) / 250;
      this.targets(viewer).forEach((v) => v.setWindow(newCenter, newWidth, null));
      this.invalidate();
    }

    setView(viewer, zoom, cx, cy) {
      const fx = cx / viewer.width, fy = cy / viewer.height;
      viewer.setView(zoom, cx, cy);
      for (const v of this.targets(viewer)) if (v !== viewer) v.setView(viewer.state.zoom, fx * v.width, fy * v.height);
      this.invalidate();
    }

    // Zoom by a factor keeping the image point under (dx, dy) fixed on screen.
    zoomAt(viewer, factor, dx, dy) {
      const [u, v] = viewer.toImage(dx, dy);
      const zoom = clamp(viewer.state.zoom * factor, MIN_ZOOM, Math.max(MIN_ZOOM, MAX_SCALE / viewer.fitScale()));
      const s = viewer.fitScale() * zoom;
      this.setView(viewer, zoom, u - (dx - viewer.canvas.width / 2) / s, v - (dy - viewer.canvas.height / 2) / s);
    }

    zoomCentre(viewer, factor) {
      this.count("zoom");
      this.zoomAt(viewer, factor, viewer.canvas.width / 2, viewer.canvas.height / 2);
    }

    panBy(viewer, dx, dy) {
      const s = viewer.scale();
      this.setView(viewer, viewer.state.zoom, viewer.state.cx - dx / s, viewer.state.cy - dy / s);
    }

    // One stored pixel to one device pixel, about the current view centre.
    oneToOne(viewer) {
      this.count("one_to_one");
      this.setView(viewer, 1 / viewer.fitScale(), viewer.state.cx, viewer.state.cy);
    }

    fit(viewer) {
      this.count("fit");
      this.setView(viewer, 1, viewer.width / 2, viewer.height / 2);
    }

    invert(viewer) {
      this.count("invert");
      const on = !viewer.state.invert;
      this.targets(viewer).forEach((v) => v.setInvert(on));
      this.invalidate();
    }

    reset(viewer) {
      this.count("reset");
      this.targets(viewer).forEach((v) => { v.setInvert(false); v.setView(1, v.width / 2, v.height / 2); });
      this.applyPreset(viewer, PRESETS[0], false);
    }

    // Linking copies the active pane's view to the others, so they start out identical.
    toggleLink() {
      if (this.viewers.length < 2) return;
      this.count("link");
      this.linked = !this.linked;
      if (this.linked) {
        const a = this.active, s = a.state;
        for (const v of this.viewers) {
          if (v === a) continue;
          v.setWindow(s.center, s.width, s.preset);
          v.setInvert(s.invert);
          v.setView(s.zoom, s.cx / a.width * v.width, s.cy / a.height * v.height);
        }
      }
      this.invalidate();
      this.updateChrome();
    }

    toggleFullscreen() {
      if (!document.fullscreenElement) this.count("fullscreen");
      const request = document.fullscreenElement ? document.exitFullscreen() : this.root.requestFullscreen();
      if (request && request.catch) request.catch(() => {}); // refused (e.g. no user gesture): nothing to do
    }

    toggleHelp(open) {
      if (!this.help) return;
      const show = open === undefined ? this.help.hidden : open;
      if (show === !this.help.hidden) return;
      if (show) {
        this.count("help");
        this.focusBeforeHelp = document.activeElement;
        this.help.hidden = false;
        const close = this.help.querySelector("button");
        if (close) close.focus();
      } else {
        // Blur first: a hidden button keeps focus until the next rendering and would take the next key.
        if (this.help.contains(document.activeElement)) document.activeElement.blur();
        this.help.hidden = true;
        const back = this.focusBeforeHelp;
        if (back && back !== document.body && back.isConnected && back.focus) back.focus();
      }
    }

    setActive(viewer) {
      if (this.active === viewer) return;
      this.active = viewer;
      this.updateChrome();
    }

    // ---- Pointer ----

    listen(viewer) {
      const canvas = viewer.canvas;
      const local = (e) => {
        const rect = canvas.getBoundingClientRect();
        return [(e.clientX - rect.left) * viewer.cssRatio, (e.clientY - rect.top) * viewer.cssRatio];
      };
      canvas.addEventListener("contextmenu", (e) => e.preventDefault());
      canvas.addEventListener("focus", () => this.setActive(viewer));
      canvas.addEventListener("pointerdown", (e) => {
        this.setActive(viewer);
        const mode = e.button === 2 || (e.button === 0 && e.shiftKey) ? "window" : e.button === 0 ? "pan" : null;
        if (!mode) return;
        e.preventDefault(); // no text selection, and focus stays where the keyboard left it
        canvas.setPointerCapture(e.pointerId);
        this.drag = { viewer, mode, id: e.pointerId, x: e.clientX, y: e.clientY, moved: false };
        canvas.classList.add(mode === "pan" ? "panning" : "windowing");
      });
      canvas.addEventListener("pointermove", (e) => {
        const [x, y] = local(e);
        this.pointer = { viewer, x, y, clientX: e.clientX, clientY: e.clientY };
        this.pointerSeen = true;
        const d = this.drag;
        if (d && d.id === e.pointerId) {
          const dx = e.clientX - d.x, dy = e.clientY - d.y;
          d.x = e.clientX; d.y = e.clientY;
          if (dx || dy) {
            if (!d.moved) { d.moved = true; this.count(d.mode === "pan" ? "pan" : "window_level"); }
            if (d.mode === "pan") this.panBy(viewer, dx * viewer.cssRatio, dy * viewer.cssRatio);
            else this.windowBy(viewer, dx, dy);
          }
        }
        if (this.loupeOn()) this.invalidate();
      });
      const end = (e) => {
        if (this.drag && this.drag.id === e.pointerId) {
          canvas.classList.remove("panning", "windowing");
          this.drag = null;
        }
      };
      canvas.addEventListener("pointerup", end);
      canvas.addEventListener("pointercancel", end);
      canvas.addEventListener("pointerleave", () => {
        if (!this.drag) { this.pointer = null; this.drawLoupe(); }
      });
      canvas.addEventListener("wheel", (e) => {
        e.preventDefault();
        this.setActive(viewer);
        const now = performance.now();
        if (now - this.lastWheel > WHEEL_GESTURE_MS) this.count("zoom");
        this.lastWheel = now;
        const lines = e.deltaMode === 1 ? 40 : e.deltaMode === 2 ? 800 : 1;
        const [x, y] = local(e);
        this.zoomAt(viewer, Math.exp(-e.deltaY * lines * 0.0015), x, y);
      }, { passive: false });
      canvas.addEventListener("dblclick", () => this.fit(viewer));
    }

    // ---- Keys (none of L, R, S, 1-5, arrows or Enter: those answer) ----

    listenKeys() {
      document.addEventListener("keydown", (e) => {
        if (e.ctrlKey || e.altKey || e.metaKey) return;
        if (e.target instanceof HTMLElement && e.target.matches("input[type=text], input[type=password], textarea, select")) return;
        if (e.defaultPrevented) return; // the page took the key (an answer)
        if (this.handleKey(e)) e.preventDefault();
      });
      document.addEventListener("keyup", (e) => {
        if (e.key.toLowerCase() === "z" && this.loupeHeld) { this.loupeHeld = false; this.drawLoupe(); }
      });
      global.addEventListener("blur", () => { if (this.loupeHeld) { this.loupeHeld = false; this.drawLoupe(); } });
    }

    handleKey(e) {
      const key = e.key, lower = key.toLowerCase(), v = this.active;
      if (key === "?") { this.toggleHelp(); return true; }
      if (key === "Escape" && this.help && !this.help.hidden) { this.toggleHelp(false); return true; }
      const preset = PRESETS.find((p) => p.key === key);
      if (preset) { this.applyPreset(v, preset); return true; }
      switch (lower) {
        case "w": this.cyclePreset(v, e.shiftKey ? -1 : 1); return true;
        case "i": this.invert(v); return true;
        case "k": this.toggleLink(); return this.viewers.length > 1;
        case "f": this.toggleFullscreen(); return true;
        case "z":
          if (!e.repeat && !this.loupeHeld) { this.loupeHeld = true; this.count("loupe"); this.invalidate(); }
          return true;
        case "0": this.reset(v); return true;
        case "1": case "!": this.oneToOne(v); return true; // "!": Shift+1 where the digits answer
        case "=": this.fit(v); return true;
        case "+": this.zoomCentre(v, 1.25); return true;
        case "-": case "_": this.zoomCentre(v, 0.8); return true;
        default: return false;
      }
    }

    // ---- Toolbar buttons: the same actions for the mouse ----

    listenToolbar() {
      const actions = {
        fit: () => this.fit(this.active),
        "one-to-one": () => this.oneToOne(this.active),
        reset: () => this.reset(this.active),
        invert: () => this.invert(this.active),
        "zoom-in": () => this.zoomCentre(this.active, 1.25),
        "zoom-out": () => this.zoomCentre(this.active, 0.8),
        link: () => this.toggleLink(),
        loupe: () => { this.loupeSticky = !this.loupeSticky; if (this.loupeSticky) this.count("loupe"); this.invalidate(); this.updateChrome(); },
        fullscreen: () => this.toggleFullscreen(),
        help: () => this.toggleHelp(),
      };
      // A clicked tool keeps no focus, so a following Enter submits the answer, not the tool again.
      this.root.addEventListener("mousedown", (e) => { if (e.target.closest("[data-viewer-action]")) e.preventDefault(); });
      this.root.addEventListener("click", (e) => {
        const button = e.target.closest("[data-viewer-action]");
        if (!button || !this.root.contains(button)) return;
        const action = button.dataset.viewerAction;
        if (action === "preset") this.applyPreset(this.active, PRESETS.find((p) => p.name === button.dataset.preset));
        else if (actions[action]) actions[action]();
      });
    }

    // Link state, active pane, pressed buttons and pane captions.
    updateChrome() {
      const multi = this.viewers.length > 1;
      if (this.panes) {
        this.panes.classList.toggle("linked", this.linked);
        this.panes.classList.toggle("unlinked", multi && !this.linked);
      }
      this.viewers.forEach((v) => {
        const pane = v.canvas.closest(".pane");
        if (!pane) return;
        pane.classList.toggle("active", multi && !this.linked && v === this.active);
        const readout = pane.querySelector(".readout");
        if (readout) {
          const preset = PRESETS.find((p) => p.name === v.state.preset);
          const text = `${preset ? preset.label : "Custom"} window · ${Math.round(v.scale() / v.cssRatio * 100)} %${v.state.invert ? " · inverted" : ""}`;
          if (readout.textContent !== text) readout.textContent = text;
        }
      });
      if (!this.toolbar) return;
      const press = (selector, on) => this.toolbar.querySelectorAll(selector).forEach((b) => b.setAttribute("aria-pressed", String(on)));
      press("[data-viewer-action=link]", this.linked);
      press("[data-viewer-action=loupe]", this.loupeSticky);
      press("[data-viewer-action=invert]", this.active.state.invert);
      PRESETS.forEach((p) => press(`[data-preset=${p.name}]`, this.active.state.preset === p.name));
      const label = this.toolbar.querySelector(".link-state");
      if (label) label.textContent = this.linked ? "Linked" : "Unlinked";
    }

    // ---- Loupe: magnified stored pixels around the pointer, with the raw value ----

    loupeOn() { return this.loupeHeld || this.loupeSticky; }

    drawLoupe() {
      // A mouse user's loupe follows the pointer and hides off the images; a keyboard user's
      // (no pointer seen yet) looks at the centre of the active pane. In a pair every pane gets
      // a loupe at the same place of its image, so the two can be compared pixel for pixel.
      const on = this.loupeOn() && (this.pointer || !this.pointerSeen);
      if (!on) { (this.loupes || []).forEach((l) => { l.box.hidden = true; }); return; }
      const p = this.pointer || this.keyboardPointer();
      const [u, w] = p.viewer.toImage(p.x, p.y);
      const fx = u / p.viewer.width, fy = w / p.viewer.height;
      this.viewers.forEach((v, i) => {
        const ix = Math.floor(fx * v.width), iy = Math.floor(fy * v.height);
        const at = v === p.viewer ? p : this.screenPoint(v, fx * v.width, fy * v.height);
        this.drawOneLoupe(this.ensureLoupe(i), v, ix, iy, at);
      });
    }

    // Where an image point of a pane lies on screen.
    screenPoint(v, u, w) {
      const s = v.scale(), rect = v.canvas.getBoundingClientRect();
      const x = (u - v.state.cx) * s + v.canvas.width / 2, y = (w - v.state.cy) * s + v.canvas.height / 2;
      return { viewer: v, x, y, clientX: rect.left + x / v.cssRatio, clientY: rect.top + y / v.cssRatio };
    }

    drawOneLoupe(loupe, v, ix, iy, p) {
      // At least twice the view's magnification, so the loupe always magnifies.
      const across = Math.floor(LOUPE_SIZE / (2 * v.scale() / v.cssRatio));
      const n = clamp(across - (1 - across % 2), 3, LOUPE_MAX_PIXELS), half = n >> 1;
      if (!loupe.cells || loupe.cells.width !== n) { loupe.cells = new ImageData(n, n); loupe.small.width = loupe.small.height = n; }
      const cells = loupe.cells, out = new Uint32Array(cells.data.buffer);
      const outside = gray(40);
      for (let y = 0; y < n; y++) {
        for (let x = 0; x < n; x++) {
          const sx = ix - half + x, sy = iy - half + y;
          out[y * n + x] = sx >= 0 && sy >= 0 && sx < v.width && sy < v.height ? v.lut[v.valueAt(sx, sy)] : outside;
        }
      }
      loupe.small.getContext("2d").putImageData(cells, 0, 0);
      const ctx = loupe.canvas.getContext("2d");
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(loupe.small, 0, 0, loupe.canvas.width, loupe.canvas.height);
      const cell = loupe.canvas.width / n;
      ctx.strokeStyle = "#ffd33d";
      ctx.lineWidth = Math.max(1, cell / 6);
      ctx.strokeRect(half * cell, half * cell, cell, cell);
      const inside = ix >= 0 && iy >= 0 && ix < v.width && iy < v.height;
      loupe.label.textContent = inside ? `value ${v.valueAt(ix, iy)} at ${ix}, ${iy}` : "outside the image";
      this.placeLoupe(loupe.box, p);
      loupe.box.hidden = false;
    }

    // Without a pointer the loupe looks at the centre of the active pane.
    keyboardPointer() {
      const v = this.active, rect = v.canvas.getBoundingClientRect();
      return { viewer: v, x: v.canvas.width / 2, y: v.canvas.height / 2, clientX: rect.left + rect.width / 2, clientY: rect.top + rect.height / 2 };
    }

    placeLoupe(box, p) {
      const size = box.getBoundingClientRect();
      let left = p.clientX + 24, top = p.clientY + 24;
      if (left + size.width > global.innerWidth) left = p.clientX - 24 - size.width;
      if (top + size.height > global.innerHeight) top = p.clientY - 24 - size.height;
      box.style.left = Math.max(0, left) + "px";
      box.style.top = Math.max(0, top) + "px";
    }

    // Made on first use, inside the reader so that it shows in full screen too; one per pane.
    ensureLoupe(index) {
      this.loupes = this.loupes || [];
      if (this.loupes[index]) return this.loupes[index];
      const box = document.createElement("div");
      box.className = "loupe";
      box.dataset.pane = String(index);
      box.setAttribute("aria-hidden", "true");
      const canvas = document.createElement("canvas");
      const ratio = global.devicePixelRatio || 1;
      canvas.width = canvas.height = Math.round(LOUPE_SIZE * ratio);
      canvas.style.width = canvas.style.height = LOUPE_SIZE + "px";
      const label = document.createElement("span");
      box.append(canvas, label);
      this.root.append(box);
      this.loupes[index] = { box, canvas, label, small: document.createElement("canvas"), cells: null };
      return this.loupes[index];
    }

    // ---- What the answer records ----

    snapshot() {
      return {
        linked: this.viewers.length > 1 ? this.linked : null,
        panes: this.viewers.map((v) => v.snapshot()),
        tools: { ...this.tools },
        fullscreen: Boolean(document.fullscreenElement),
      };
    }

    // For tests: pixel statistics and state, without handing out the images themselves.
    debugApi() {
      const group = this;
      return Object.freeze({
        get count() { return group.viewers.length; },
        state: () => group.snapshot(),
        stats: (i) => {
          const v = group.viewers[i];
          let distinct = 0;
          for (let k = 0; k < v.hist.length; k++) if (v.hist[k]) distinct++;
          return { width: v.width, height: v.height, bitDepth: v.bitDepth, distinct };
        },
        valueAt: (i, x, y) => group.viewers[i].valueAt(x, y),
        renderNow: () => group.renderNow(),
      });
    }
  }

  // The per-image work a pane needs (histogram, pyramid), done ahead: the reading page runs it
  // on the next case's images while the reader reads, the same for every image.
  function prepare(image) {
    image.hist = histogramOf(image);
    image.levels = pyramidOf(image);
    return image;
  }

  global.ReaderViewer = { ViewerGroup, Viewer, PRESETS, prepare };
})(window);
