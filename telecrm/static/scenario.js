// «Сценарий» on the task list: a call task's panel is fetched from the server when it is first
// opened (the same panel the client card and «Обзвон» show).
document.querySelectorAll("details[data-scenario-src]").forEach((details) => {
  details.addEventListener("toggle", async () => {
    if (!details.open || details.dataset.loaded) return;
    const box = details.querySelector(".sc-box");
    try {
      const response = await fetch(details.dataset.scenarioSrc, { credentials: "same-origin" });
      if (!response.ok) { box.textContent = "Сценарий недоступен."; return; }
      box.innerHTML = await response.text();
      details.dataset.loaded = "1";
    } catch (e) {
      box.textContent = "Нет связи с сервером.";
    }
  });
});
