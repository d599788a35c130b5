// The analyst report: sortable per-case table, and SVG / PNG downloads for every figure.
// No inline script (the site's Content-Security-Policy); runs after the page has parsed.
"use strict";

(function () {
  function cellValue(row, index) {
    const cell = row.children[index];
    if (!cell) return "";
    if (cell.dataset.sort !== undefined) return Number(cell.dataset.sort);
    const text = cell.textContent.trim();
    const number = parseFloat(text);
    return Number.isNaN(number) || !/^[-\d.]/.test(text) ? text.toLowerCase() : number;
  }

  function makeSortable(table) {
    const headers = table.querySelectorAll("thead th");
    headers.forEach(function (header, index) {
      header.classList.add("sortable");
      header.setAttribute("tabindex", "0");
      header.setAttribute("aria-sort", "none");
      function sort() {
        const ascending = header.getAttribute("aria-sort") !== "ascending";
        headers.forEach(function (other) { other.setAttribute("aria-sort", "none"); });
        header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        const body = table.tBodies[0];
        const rows = Array.from(body.rows);
        rows.sort(function (a, b) {
          const x = cellValue(a, index), y = cellValue(b, index);
          if (typeof x === "number" && typeof y === "number") return ascending ? x - y : y - x;
          return ascending ? String(x).localeCompare(String(y)) : String(y).localeCompare(String(x));
        });
        rows.forEach(function (row) { body.appendChild(row); });
      }
      header.addEventListener("click", sort);
      header.addEventListener("keydown", function (event) { if (event.key === "Enter") sort(); });
    });
  }

  function download(name, blob) {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = name;
    document.body.appendChild(link);
    link.click();
    setTimeout(function () { URL.revokeObjectURL(link.href); link.remove(); }, 0);
  }

  function svgText(svg) {
    const copy = svg.cloneNode(true);
    copy.setAttribute("xmlns", "http://www.w3.org/2000/svg");
    // Figures draw in currentColor; a file on its own is drawn black on white.
    copy.setAttribute("style", "color:#000;background:#fff");
    return new XMLSerializer().serializeToString(copy);
  }

  function addDownloads(figure, index) {
    const svg = figure.querySelector("svg");
    if (!svg) return;
    const base = (svg.querySelector("title") ? svg.querySelector("title").textContent : "figure-" + index)
      .replace(/[^A-Za-z0-9_-]+/g, "-").replace(/^-|-$/g, "").slice(0, 80) || "figure-" + index;
    const bar = document.createElement("p");
    bar.className = "report-figure-downloads";
    const asSvg = document.createElement("a");
    asSvg.href = "#";
    asSvg.textContent = "SVG";
    asSvg.addEventListener("click", function (event) {
      event.preventDefault();
      download(base + ".svg", new Blob([svgText(svg)], { type: "image/svg+xml" }));
    });
    const asPng = document.createElement("a");
    asPng.href = "#";
    asPng.textContent = "PNG";
    asPng.addEventListener("click", function (event) {
      event.preventDefault();
      const box = svg.viewBox && svg.viewBox.baseVal && svg.viewBox.baseVal.width ? svg.viewBox.baseVal : svg.getBBox();
      const scale = 2;
      const image = new Image();
      image.onload = function () {
        const canvas = document.createElement("canvas");
        canvas.width = Math.ceil(box.width * scale);
        canvas.height = Math.ceil(box.height * scale);
        const context = canvas.getContext("2d");
        context.fillStyle = "#fff";
        context.fillRect(0, 0, canvas.width, canvas.height);
        context.drawImage(image, 0, 0, canvas.width, canvas.height);
        canvas.toBlob(function (blob) { download(base + ".png", blob); }, "image/png");
      };
      image.src = URL.createObjectURL(new Blob([svgText(svg)], { type: "image/svg+xml" }));
    });
    bar.append("Download: ", asSvg, " ", asPng);
    figure.after(bar);
  }

  document.querySelectorAll("table.sortable-table").forEach(makeSortable);
  document.querySelectorAll("figure.report-figure").forEach(addDownloads);
})();
