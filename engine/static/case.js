// The case forms as the user types: the form is posted (debounced) to its live
// endpoint, which answers per field whether it is visible, required, read-only and
// its computed value, by the server's own rules. Without this script the pages work
// the same; the server checks everything again on saving.
(function () {
  "use strict";
  var form = document.querySelector("form.case-fields[data-live]");
  if (!form || !window.fetch || !window.FormData) return;
  var timer = null;
  var pending = null;

  function inputs(name) {
    return form.querySelectorAll('[name="' + name + '"]');
  }

  function apply(conditions) {
    Object.keys(conditions).forEach(function (path) {
      if (path.indexOf("[") !== -1) return; // rows: decided again on saving
      var c = conditions[path];
      var box = form.querySelector('.cl-field[data-field="' + path + '"]');
      if (box) box.hidden = !c.visible;
      var locked = box && box.querySelector("fieldset.locked");
      inputs(path).forEach(function (input) {
        if (locked) return;
        if (input.type !== "checkbox" && input.type !== "file") input.required = !!c.required;
        if (c.value !== undefined && c.value !== null && input.disabled &&
            input.type !== "radio" && input.type !== "checkbox") {
          input.value = String(c.value);
        }
      });
    });
  }

  function send() {
    var data = new FormData(form);
    // The conditions never need the files: do not upload them on every keystroke.
    Array.prototype.forEach.call(form.querySelectorAll("input[type=file]"), function (input) {
      data.delete(input.name);
    });
    if (pending) pending.abort();
    pending = window.AbortController ? new AbortController() : null;
    fetch(form.getAttribute("data-live"), {
      method: "POST", body: data, credentials: "same-origin",
      headers: {"Accept": "application/json"},
      signal: pending ? pending.signal : undefined
    }).then(function (resp) {
      return resp.ok ? resp.json() : null;
    }).then(function (conditions) {
      if (conditions) apply(conditions);
    }).catch(function () { /* offline or aborted: the server decides on saving */ });
  }

  function later() {
    if (timer) clearTimeout(timer);
    timer = setTimeout(send, 300);
  }

  form.addEventListener("input", later);
  form.addEventListener("change", later);

  // Reference fields: suggestions from the cases the reader may see, as they type.
  var lookup = form.getAttribute("data-references");
  Array.prototype.forEach.call(form.querySelectorAll("input[data-reference]"), function (input, i) {
    if (!lookup) return;
    var list = document.createElement("datalist");
    list.id = "cl-references-" + i;
    input.parentNode.appendChild(list);
    input.setAttribute("list", list.id);
    var wait = null;
    input.addEventListener("input", function () {
      if (wait) clearTimeout(wait);
      wait = setTimeout(function () {
        var url = lookup + "?q=" + encodeURIComponent(input.value) +
          (input.getAttribute("data-workflow") ?
            "&workflow=" + encodeURIComponent(input.getAttribute("data-workflow")) : "");
        fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
          .then(function (resp) { return resp.ok ? resp.json() : []; })
          .then(function (found) {
            list.textContent = "";
            found.forEach(function (item) {
              var option = document.createElement("option");
              option.value = item.reference;
              option.label = item.label;
              list.appendChild(option);
            });
          }).catch(function () { /* offline: the field still takes what is typed */ });
      }, 250);
    });
  });

  // The customer in the CRM: as a phone number or email is typed on a new case, who
  // it is (segment, tier, stage) appears under the field and empty name fields fill.
  var customers = form.getAttribute("data-customers");
  Array.prototype.forEach.call(form.querySelectorAll("input[type=tel], input[type=email]"),
    function (input) {
      if (!customers) return;
      var box = document.createElement("div");
      box.className = "crm-found note";
      box.setAttribute("aria-live", "polite");
      input.parentNode.appendChild(box);
      var wait = null;
      input.addEventListener("input", function () {
        if (wait) clearTimeout(wait);
        wait = setTimeout(function () {
          var key = input.type === "email" ? "email" : "phone";
          if (input.value.trim().length < 5) { box.textContent = ""; return; }
          fetch(customers + "?" + key + "=" + encodeURIComponent(input.value.trim()),
                {credentials: "same-origin", headers: {"Accept": "application/json"}})
            .then(function (resp) { return resp.ok ? resp.json() : null; })
            .then(function (found) { if (found) show(box, found); })
            .catch(function () { box.textContent = ""; });
        }, 500);
      });
    });

  function show(box, found) {
    box.textContent = "";
    found.customers.slice(0, 1).forEach(function (c) {
      var parts = [c.display_name, c.segment, c.value_tier, c.lifecycle_stage]
        .filter(function (p) { return p; });
      var line = document.createElement("span");
      line.className = "crm-customer";
      line.textContent = c.crm + ": " + parts.join(" · ");
      box.appendChild(line);
      if (c.url) {
        var link = document.createElement("a");
        link.href = c.url;
        link.rel = "noopener noreferrer";
        link.target = "_blank";
        link.textContent = " ↗";
        box.appendChild(link);
      }
      var name = form.querySelector("input[name=customer_name]");
      if (name && !name.value && c.display_name) {
        name.value = c.display_name;
        name.dispatchEvent(new Event("input", {bubbles: true}));
      }
    });
    found.unavailable.forEach(function (u) {
      var note = document.createElement("span");
      note.className = "crm-unavailable";
      note.textContent = " " + u.crm + " ✕";
      note.title = u.reason;
      box.appendChild(note);
    });
  }
})();
