// Polls a background job's progress for a console page; reloads the page once the job ends.
(function () {
  "use strict";
  for (const box of document.querySelectorAll(".job-progress[data-progress-url]")) {
    if (box.dataset.active !== "true") continue;
    const bar = box.querySelector("progress");
    const state = box.querySelector(".job-state");
    const count = box.querySelector(".job-count");
    const message = box.querySelector(".job-message");
    const poll = async () => {
      let job;
      try {
        const response = await fetch(box.dataset.progressUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (!response.ok) throw new Error(String(response.status));
        job = await response.json();
      } catch (error) {
        message.textContent = "progress unavailable, retrying…";
        setTimeout(poll, 3000);
        return;
      }
      bar.max = job.total || 1;
      bar.value = job.done;
      bar.textContent = job.percent + "%";
      state.textContent = job.status === "running" ? "Running" : job.status === "queued" ? "Queued" : "Finished";
      count.textContent = job.total ? `${job.done} of ${job.total}` : "";
      message.textContent = job.message;
      if (job.active) setTimeout(poll, 1000);
      else window.location.reload();
    };
    setTimeout(poll, 500);
  }
})();
