// The script editor: add, remove and reorder stages; add and remove phrases and groups of
// forbidden words. Blocks post in the order shown (see telecrm/speech/script_form.py).

const editor = document.getElementById("kkp-editor");

function fromTemplate(id) {
  return document.getElementById(id).content.firstElementChild.cloneNode(true);
}

function addPhrase(list) {
  const row = fromTemplate("kkp-phrase-template");
  const input = row.querySelector("input");
  input.name = list.dataset.field;
  const labels = { phrase: "Фраза", obj_phrase: "Слова клиента" };
  input.setAttribute("aria-label", labels[list.dataset.field] || "Запрещённое слово");
  list.querySelector(".kkp-add-phrase").before(row);
  input.focus();
}

if (editor) {
  editor.addEventListener("click", (event) => {
    const button = event.target.closest("button[type=button]");
    if (!button) return;
    const stage = button.closest(".kkp-stage");
    if (button.matches(".kkp-add-phrase")) {
      addPhrase(button.closest(".kkp-phrases"));
    } else if (button.matches(".kkp-remove-phrase")) {
      const list = button.closest(".kkp-phrases");
      if (list.querySelectorAll(".kkp-phrase").length > 1) button.closest(".kkp-phrase").remove();
      else button.closest(".kkp-phrase").querySelector("input").value = "";
    } else if (button.matches(".kkp-up") && stage.previousElementSibling) {
      stage.after(stage.previousElementSibling);
    } else if (button.matches(".kkp-down") && stage.nextElementSibling) {
      stage.before(stage.nextElementSibling);
    } else if (button.matches(".kkp-remove-block")) {
      button.closest(".kkp-stage, .kkp-ban, .kkp-objection").remove();
    } else if (button.matches(".kkp-add-stage")) {
      const block = fromTemplate("kkp-stage-template");
      document.getElementById("kkp-stages").append(block);
      block.querySelector("input[name=step_title]").focus();
    } else if (button.matches(".kkp-add-objection")) {
      const block = fromTemplate("kkp-objection-template");
      document.getElementById("kkp-objections").append(block);
      block.querySelector("input[name=obj_title]").focus();
    } else if (button.matches(".kkp-add-ban")) {
      const block = fromTemplate("kkp-ban-template");
      document.getElementById("kkp-bans").append(block);
      block.querySelector("input[name=ban_title]").focus();
    }
  });
}
