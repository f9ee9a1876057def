/*
 * Voting without a page reload.
 *
 * Each vote button sits in a plain <form class="vote-form"> that works on its own
 * (POST, then a redirect back to `next`). This script takes over the submit: it
 * calls the API's vote endpoint (the form's data-api-url, /api/ideas/<id>/vote/:
 * POST to vote, DELETE to unvote), whose answer {score, voted} updates the score
 * and the button in place. Anonymous voters get a 401 and are sent to the form's
 * data-login-url, which brings them back here.
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

  // The API's error body: {"detail": ..., "errors": {"idea": ["Archived ideas ..."]}} on a 400.
  function errorText(body, status) {
    const messages = body.errors ? Object.values(body.errors).flat() : [];
    return messages.join(" ") || body.detail || "The vote did not go through (" + status + ").";
  }

  async function submitVote(form) {
    const button = form.querySelector(".vote-button");
    const data = new FormData(form);
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(form.dataset.apiUrl, {
        method: data.get("action") === "unvote" ? "DELETE" : "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": data.get("csrfmiddlewaretoken") },
      });
      const body = await response.json().catch(function () { return {}; });
      if (response.ok) {
        applyResult(form, body);
      } else if (response.status === 401) {
        window.location.assign(form.dataset.loginUrl);
      } else {
        showMessage(form, errorText(body, response.status));
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
    if (!window.fetch || !form.dataset.apiUrl) return; // very old browser: let the form post normally
    event.preventDefault();
    submitVote(form);
  });
})();
