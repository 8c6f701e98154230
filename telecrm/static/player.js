// The call player's time line: who spoke when (stored at finalize), click to seek.
"use strict";
document.querySelectorAll(".player[data-activity]").forEach(async (box) => {
  const audio = box.querySelector("audio");
  const lanes = box.querySelectorAll(".lane");
  if (!audio || !lanes.length) return;
  const response = await fetch(box.dataset.activity, { credentials: "same-origin" });
  if (!response.ok) return;
  const data = await response.json();
  const duration = data.duration || 1;
  const names = { manager: ["manager", "caller", "mixed"], client: ["client", "callee"] };
  lanes.forEach((lane) => {
    const key = names[lane.dataset.speaker].find((k) => data.activity[k]);
    (data.activity[key] || []).forEach(([start, end]) => {
      const bar = document.createElement("i");
      bar.style.left = `${(100 * start) / duration}%`;
      bar.style.width = `${Math.max(0.5, (100 * (end - start)) / duration)}%`;
      bar.title = `${start.toFixed(1)}–${end.toFixed(1)} с`;
      bar.addEventListener("click", () => { audio.currentTime = start; audio.play(); });
      lane.appendChild(bar);
    });
  });
  const cursor = document.createElement("b");
  box.querySelector(".timeline").appendChild(cursor);
  audio.addEventListener("timeupdate", () => {
    cursor.style.left = `${(100 * audio.currentTime) / duration}%`;
  });
});
