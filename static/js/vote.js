/*
 * Voting without a page reload.
 *
 * Each vote button sits in a plain <form class="vote-form"> that works on its own
 * (POST, then a redirect back to `next`). This script takes over the submit: it
 * posts the same form with fetch, asks for JSON, and updates the score and the
 * button in place. Anonymous voters get a 401 with a login URL and are sent there.
 */
(function () {
  "use strict";

  function showMessage(form, text) {
    const message = form.querySelector(".vote-message");
    if (message) message.textContent = text;
  }

  function applyResult(form, result) {
    const button = form.querySelector(".vote-button");
    const action = form.querySelector('input[name="action"]');
    form.querySelector(".vote-score").textContent = String(result.score);
    button.setAttribute("aria-pressed", result.voted ? "true" : "false");
    button.title = result.voted ? "Remove your vote" : "Upvote";
    action.value = result.voted ? "unvote" : "vote";
    showMessage(form, "");
  }

  async function submitVote(form) {
    const button = form.querySelector(".vote-button");
    const data = new FormData(form);
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    try {
      // getAttribute: the form's hidden input named "action" shadows the form.action property.
      const response = await fetch(form.getAttribute("action"), {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": data.get("csrfmiddlewaretoken") },
      });
      const body = await response.json().catch(function () { return {}; });
      if (response.ok) {
        applyResult(form, body);
      } else if (response.status === 401 && body.login_url) {
        window.location.assign(body.login_url);
      } else {
        showMessage(form, body.detail || "The vote did not go through (" + response.status + ").");
      }
    } catch (error) {
      showMessage(form, "Could not reach the server; try again.");
    } finally {
      button.disabled = false;
      form.removeAttribute("aria-busy");
    }
  }

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("vote-form")) return;
    if (!window.fetch) return; // very old browser: let the form post normally
    event.preventDefault();
    submitVote(form);
  });
})();
