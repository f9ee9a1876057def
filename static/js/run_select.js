/*
 * The runs list's "Compare selected" button: enabled while two to six runs are ticked, it
 * opens /runs/compare/?ids=3,5,8.
 *
 * Without JavaScript the same form is a plain GET (/runs/compare/?ids=3&ids=5) and the
 * compare page says why when the choice is not two to six runs. runs.js swaps the page's
 * <main> when a live run finishes; the ticks are kept across that swap.
 */
(function () {
  "use strict";

  const selected = new Set(); // the ticked run ids, kept while runs.js swaps <main>

  function choices(form) {
    return Array.from(form.querySelectorAll(".js-compare-choice"));
  }

  function update(form) {
    const min = Number(form.dataset.min);
    const max = Number(form.dataset.max);
    const count = choices(form).filter(function (box) { return box.checked; }).length;
    const button = form.querySelector(".js-compare-button");
    const hint = form.querySelector(".js-compare-hint");
    if (button) button.disabled = count < min || count > max;
    if (hint) {
      hint.textContent = count > max
        ? count + " selected: at most " + max + " at a time."
        : count + " selected; tick " + min + " to " + max + " runs to see them side by side.";
    }
  }

  function start(root) {
    root.querySelectorAll(".js-compare-form").forEach(function (form) {
      choices(form).forEach(function (box) { if (selected.has(box.value)) box.checked = true; });
      update(form);
    });
  }

  document.addEventListener("change", function (event) {
    const box = event.target;
    if (!(box instanceof HTMLInputElement) || !box.classList.contains("js-compare-choice")) return;
    if (box.checked) selected.add(box.value); else selected.delete(box.value);
    const form = box.closest(".js-compare-form");
    if (form) update(form);
  });

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("js-compare-form")) return;
    const ids = choices(form).filter(function (box) { return box.checked; }).map(function (box) { return box.value; });
    event.preventDefault();
    if (ids.length < Number(form.dataset.min) || ids.length > Number(form.dataset.max)) return;
    window.location.assign(form.action + "?ids=" + ids.join(","));
  });

  function ready() {
    start(document);
    const main = document.getElementById("main");
    if (main && window.MutationObserver) {
      new MutationObserver(function () { start(main); }).observe(main, { childList: true });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
