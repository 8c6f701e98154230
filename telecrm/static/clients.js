// Clients: tick every client of the page at once, count the ticked ones, and add one more
// phone or e-mail field on the card's forms (the server also always gives one empty field).

const all = document.getElementById("pick-all");
const picks = () => Array.from(document.querySelectorAll("input[name=client_id]"));
const counter = document.getElementById("picked-count");

function count() {
  if (!counter) return;
  const n = picks().filter((box) => box.checked).length;
  counter.textContent = n ? "Отмечено: " + n : "";
}

if (all) {
  all.addEventListener("change", () => {
    picks().forEach((box) => { box.checked = all.checked; });
    count();
  });
}
picks().forEach((box) => box.addEventListener("change", count));

document.querySelectorAll("button.cl-more").forEach((button) => {
  button.addEventListener("click", () => {
    const box = button.closest(".cl-multi");
    const last = box.querySelectorAll("input");
    const copy = last[last.length - 1].cloneNode();
    copy.value = "";
    box.insertBefore(copy, button);
    copy.focus();
  });
});
