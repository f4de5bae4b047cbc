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
})();
