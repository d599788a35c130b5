// The study page's preparation progress: polls the study's progress endpoint while it prepares,
// and reloads the page once preparation has ended (ready, or failed with its reason).
(() => {
  "use strict";
  const box = document.querySelector(".preparation[data-progress-url]");
  if (!box || box.dataset.state !== "preparing") return;
  const bar = document.getElementById("prep-bar");
  const text = document.getElementById("prep-text");

  function poll() {
    fetch(box.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => { if (!response.ok) throw new Error(String(response.status)); return response.json(); })
      .then((data) => {
        if (data.total !== undefined) {
          bar.max = Math.max(1, data.total);
          bar.value = data.done;
          text.textContent = `${data.done} of ${data.total} synthetic images ready` + (data.message ? ` · ${data.message}` : "");
        }
        if (data.state !== "preparing") { window.location.reload(); return; }
        setTimeout(poll, 1000);
      })
      .catch(() => {
        text.textContent = "Progress could not be fetched; trying again…";
        setTimeout(poll, 5000);
      });
  }
  setTimeout(poll, 500);
})();
