/*
 * The add-an-experiment page: choosing a kind loads its form at once.
 *
 * Without JavaScript the kind picker is a plain GET form with a "Choose" button; with it,
 * changing the select submits that form and the button is hidden. Switching kinds after
 * typing into the params form asks first, since the params of one kind do not fit another.
 */
(function () {
  "use strict";

  const select = document.querySelector(".js-kind-select");
  if (!select) return;
  const chooseButton = document.querySelector(".js-kind-choose");
  if (chooseButton) chooseButton.hidden = true;

  let edited = false;
  const specForm = document.querySelector(".spec-form");
  if (specForm) specForm.addEventListener("input", function () { edited = true; });

  const initial = select.value;
  select.addEventListener("change", function () {
    if (edited && !window.confirm("Switch kinds? What you typed into the parameters will be lost.")) {
      select.value = initial;
      return;
    }
    select.form.submit();
  });
})();
