/*
 * The add-an-experiment page's params: fields built from the kind's JSON Schema, no JSON to type.
 *
 * The server renders one JSON textarea (`params`, prefilled with the kind's defaults or with what
 * was submitted) and the kind's schema as <script id="params-schema" type="application/json">.
 * This script reads the schema the way experiments/engine/params_schema.py does and builds:
 *
 *   - nested objects as fieldsets (titles as labels, descriptions as help text);
 *   - a tagged union (`{"source": "native", ...}` | `{"source": "run", ...}`) as a select of its
 *     alternatives that swaps in the chosen one's own fields (what was typed in each is kept);
 *   - integers and numbers as number inputs with min, max and step; booleans as checkboxes;
 *     enums as selects; `X | None` as an optional field (empty means none);
 *   - lists as a group of checkboxes when the values are a few known ones (depths 1-4), else as
 *     a list of inputs to add to and remove from; anything else as a small JSON textarea.
 *
 * Each field is checked here as it changes and again on submit (required, whole numbers, bounds,
 * lengths, patterns), with the message beside it; the server checks everything again. Its
 * messages arrive as a list at the top of the params (`li[data-param-path]`, a dotted path such as
 * `training.model.n_layers`, `model.native.config.n_ctx` or `depths.0`): each moves beside the
 * field its path names, the rest stay at the top.
 *
 * On submit the whole params object (every field, defaults included) is written into the textarea:
 * the server keeps one path and normalises it anyway, and the spec cards list only what differs
 * from the defaults. "Advanced: edit JSON" shows the textarea instead of the fields; each side
 * follows the other while its content is valid. Without JavaScript the textarea is the form.
 */
(function () {
  "use strict";

  const schemaScript = document.getElementById("params-schema");
  const textarea = document.getElementById("id_params");
  const builderRoot = document.querySelector(".js-param-builder");
  const jsonField = document.querySelector(".js-param-json");
  const topErrors = document.getElementById("id_params_error");
  if (!schemaScript || !textarea || !builderRoot || !jsonField || !topErrors) return;
  const form = textarea.form;
  const rootSchema = JSON.parse(schemaScript.textContent);
  const defs = rootSchema.$defs || {};
  const SMALL_CHOICE = 12; // at most this many known values: checkboxes rather than a list of inputs
  let uid = 0;
  const nodeOfControl = new WeakMap();

  // ---- Reading the schema --------------------------------------------------------------------

  function resolve(schema) {
    // Follow $ref and a single allOf into $defs, keeping the outer keys (title, default, description).
    for (let i = 0; i < 20 && schema; i++) {
      if (schema.$ref) {
        const target = defs[schema.$ref.split("/").pop()] || {};
        const outer = Object.assign({}, schema);
        delete outer.$ref;
        schema = Object.assign({}, target, outer);
      } else if (Array.isArray(schema.allOf) && schema.allOf.length === 1) {
        const outer = Object.assign({}, schema);
        delete outer.allOf;
        schema = Object.assign({}, schema.allOf[0], outer);
      } else {
        break;
      }
    }
    return schema || {};
  }

  function splitNullable(schema) {
    // {schema: the schema without its null branch, nullable: whether null is allowed}
    schema = resolve(schema);
    if (Array.isArray(schema.type) && schema.type.includes("null")) {
      const rest = schema.type.filter((t) => t !== "null");
      return { schema: Object.assign({}, schema, { type: rest.length === 1 ? rest[0] : rest }), nullable: true };
    }
    for (const key of ["anyOf", "oneOf"]) {
      const branches = schema[key];
      if (Array.isArray(branches) && branches.some((b) => b.type === "null")) {
        const rest = branches.filter((b) => b.type !== "null");
        const outer = Object.assign({}, schema);
        delete outer[key];
        const inner =
          rest.length === 1 ? Object.assign({}, resolve(rest[0]), outer) : Object.assign(outer, { [key]: rest });
        return { schema: resolve(inner), nullable: true };
      }
    }
    return { schema: schema, nullable: false };
  }

  function unionOf(schema) {
    // A union of objects told apart by one constant property: {tag, branches: [{value, schema}]}.
    const branches = (schema.oneOf || schema.anyOf || []).map(resolve);
    if (branches.length < 2) return null;
    let tag = schema.discriminator && schema.discriminator.propertyName;
    if (!tag) {
      const props = branches[0].properties || {};
      tag = Object.keys(props).find((name) => "const" in props[name]);
    }
    if (!tag) return null;
    const found = [];
    for (const branch of branches) {
      const prop = (branch.properties || {})[tag];
      if (!prop || !("const" in prop)) return null;
      found.push({ value: prop.const, schema: branch });
    }
    return { tag: tag, branches: found };
  }

  function choicesOf(schema) {
    // The allowed values of an enum, a const or a union of them; null for anything else.
    if (Array.isArray(schema.enum)) return schema.enum.slice();
    if ("const" in schema) return [schema.const];
    const branches = schema.anyOf || schema.oneOf;
    if (!Array.isArray(branches)) return null;
    let values = [];
    for (const branch of branches) {
      const found = choicesOf(resolve(branch));
      if (found === null) return null;
      values = values.concat(found);
    }
    return values;
  }

  function example(schema, depth) {
    // A value made of the defaults (a union's first alternative); required fields without one are left out.
    depth = depth || 0;
    schema = resolve(schema);
    if ("default" in schema) return clone(schema.default);
    if ("const" in schema) return schema.const;
    if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0];
    if (depth > 8) return null;
    for (const key of ["oneOf", "anyOf"]) {
      const branches = (schema[key] || []).filter((b) => b.type !== "null");
      if (branches.length) return example(branches[0], depth + 1);
    }
    if (schema.properties) {
      const out = {};
      for (const [name, prop] of Object.entries(schema.properties)) {
        const inner = resolve(prop);
        if ("default" in inner || "const" in inner || inner.properties || inner.oneOf || inner.anyOf) {
          out[name] = example(prop, depth + 1);
        }
      }
      return out;
    }
    return undefined;
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  function clone(value) {
    return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
  }

  function humanize(name) {
    return String(name).split("_").map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join(" ");
  }

  function firstParagraph(text) {
    return text ? String(text).split(/\n\s*\n/)[0].replace(/\s+/g, " ").trim() : "";
  }

  function shown(value) {
    if (value === null || value === undefined) return "none";
    if (Array.isArray(value)) return value.length ? value.map(shown).join(", ") : "none";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function boundsText(schema) {
    const parts = [];
    const low = schema.minimum;
    // A record id's bound (2**53) says nothing to a reader.
    const high = schema.maximum > Number.MAX_SAFE_INTEGER ? undefined : schema.maximum;
    if (low !== undefined && high !== undefined) parts.push("From " + low + " to " + high + ".");
    else if (low !== undefined) parts.push("At least " + low + ".");
    else if (high !== undefined) parts.push("At most " + high + ".");
    if (schema.exclusiveMinimum !== undefined) parts.push("More than " + schema.exclusiveMinimum + ".");
    if (schema.exclusiveMaximum !== undefined) parts.push("Less than " + schema.exclusiveMaximum + ".");
    return parts.join(" ");
  }

  // ---- Checking a value against its schema (the server checks again) ------------------------

  function numberProblems(value, schema) {
    if (schema.type === "integer" && !Number.isInteger(value)) return ["Enter a whole number."];
    if (schema.minimum !== undefined && value < schema.minimum) return ["Must be at least " + schema.minimum + "."];
    if (schema.maximum !== undefined && value > schema.maximum) return ["Must be at most " + schema.maximum + "."];
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) {
      return ["Must be more than " + schema.exclusiveMinimum + "."];
    }
    if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) {
      return ["Must be less than " + schema.exclusiveMaximum + "."];
    }
    return [];
  }

  function stringProblems(value, schema) {
    if (schema.minLength !== undefined && value.length < schema.minLength) {
      return [schema.minLength === 1 ? "Required." : "At least " + schema.minLength + " characters."];
    }
    if (schema.maxLength !== undefined && value.length > schema.maxLength) {
      return ["At most " + schema.maxLength + " characters."];
    }
    if (schema.pattern && !matches(schema.pattern, value)) {
      return ["Not allowed here: it must match " + schema.pattern + "."];
    }
    return [];
  }

  function matches(pattern, value) {
    try {
      return new RegExp(pattern, "u").test(value);
    } catch (e) {
      return true; // a Python pattern JavaScript cannot read: the server checks it
    }
  }

  // ---- Building the DOM ----------------------------------------------------------------------

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children || []) if (child) node.append(child);
    return node;
  }

  // The parts every field shares: a wrapper, its messages (beside the field) and its help text.
  function fieldShell(info, extraClass) {
    const id = "param-" + ++uid;
    const wrapper = el("div", {
      className: "field param-field" + (extraClass ? " " + extraClass : ""),
      "data-path": info.path,
    });
    const errors = el("ul", { className: "errorlist", id: id + "-error", hidden: true });
    const help = [firstParagraph(info.description), info.bounds || ""];
    if (info.hasDefault) help.push("Default: " + shown(info.default) + ".");
    if (info.required) help.push("Required.");
    if (info.nullable && info.emptyMeansNone) help.push("Optional: leave empty for none.");
    const helpText = help.filter(Boolean).join(" ");
    const helpEl = helpText ? el("div", { className: "helptext", id: id + "-help", text: helpText }) : null;
    return { id: id, wrapper: wrapper, errors: errors, help: helpEl };
  }

  function describe(control, shell) {
    const ids = [shell.errors.id];
    if (shell.help) ids.push(shell.help.id);
    control.setAttribute("aria-describedby", ids.join(" "));
  }

  // A node owns one part of the params: get() its value, set(value), check(show) its problems
  // (returns the nodes with problems), find(parts) the node a dotted error path names.
  function messagesMixin(node, shell, controls, invalidClass) {
    node.clientMessages = [];
    node.serverMessages = [];
    node.render = function () {
      const all = node.clientMessages.concat(node.serverMessages);
      shell.errors.replaceChildren(...all.map((m) => el("li", { text: m })));
      shell.errors.hidden = all.length === 0;
      // A group's message is about the group: its fields keep their own colours.
      shell.wrapper.classList.toggle(invalidClass || "field-invalid", all.length > 0);
      for (const control of controls()) {
        if (all.length) control.setAttribute("aria-invalid", "true");
        else control.removeAttribute("aria-invalid");
      }
    };
    node.showServer = function (message) {
      node.serverMessages.push(message);
      node.render();
    };
    node.edited = function () {
      if (node.serverMessages.length) {
        node.serverMessages = [];
        node.render();
      }
      if (node.clientMessages.length) node.check(true);
    };
    node.check = function (show) {
      const problems = node.problems();
      if (show || problems.length === 0) {
        node.clientMessages = problems;
        node.render();
      }
      return problems.length ? [node] : [];
    };
    node.find = function (parts) {
      return { node: node, rest: parts };
    };
    node.focus = function () {
      const first = controls()[0];
      if (first) first.focus();
    };
    return node;
  }

  function label(info, control) {
    return el("label", { for: control.id, text: info.title });
  }

  function pathCode(info) {
    return el("code", { className: "param-name", "aria-hidden": "true", text: info.path });
  }

  // A field of one labelled control (a number, a text, a select, a JSON box): label, path, control, errors
  // and help in the field's wrapper, and the node that shows the field's messages.
  function labelledControlNode(shell, info, control) {
    describe(control, shell);
    shell.wrapper.append(label(info, control), pathCode(info), control, shell.errors);
    if (shell.help) shell.wrapper.append(shell.help);
    return messagesMixin({ el: shell.wrapper, info: info }, shell, () => [control]);
  }

  function numberNode(schema, info, value) {
    info.bounds = boundsText(schema);
    info.emptyMeansNone = true;
    const shell = fieldShell(info);
    const input = el("input", {
      type: "number",
      id: shell.id,
      "data-param-path": info.path,
      min: schema.minimum,
      max: schema.maximum,
      step: schema.type === "integer" ? "1" : "any",
      inputmode: schema.type === "integer" ? "numeric" : "decimal",
      "aria-required": info.required ? "true" : null,
    });
    const node = labelledControlNode(shell, info, input);
    node.set = function (v) {
      input.value = typeof v === "number" ? String(v) : "";
    };
    node.get = function () {
      if (input.value === "") return info.nullable ? null : undefined;
      const number = Number(input.value);
      return Number.isFinite(number) ? number : undefined;
    };
    node.problems = function () {
      if (input.validity && input.validity.badInput) return ["Enter a number."];
      if (input.value === "") return info.nullable ? [] : [info.required ? "Required." : "Enter a number."];
      return numberProblems(Number(input.value), schema);
    };
    nodeOfControl.set(input, node);
    node.set(value);
    return node;
  }

  function textNode(schema, info, value) {
    info.emptyMeansNone = true;
    const shell = fieldShell(info);
    const input = el("input", {
      type: "text",
      id: shell.id,
      "data-param-path": info.path,
      maxlength: schema.maxLength,
      spellcheck: "false",
      "aria-required": info.required ? "true" : null,
    });
    const node = labelledControlNode(shell, info, input);
    node.set = function (v) {
      input.value = typeof v === "string" ? v : "";
    };
    node.get = function () {
      if (input.value === "" && info.nullable) return null;
      if (input.value === "" && info.required) return undefined;
      return input.value;
    };
    node.problems = function () {
      if (input.value === "") return info.required ? ["Required."] : [];
      return stringProblems(input.value, schema);
    };
    nodeOfControl.set(input, node);
    node.set(value);
    return node;
  }

  function checkboxNode(info, value) {
    const shell = fieldShell(info, "field-checkbox");
    const input = el("input", { type: "checkbox", id: shell.id, "data-param-path": info.path });
    describe(input, shell);
    shell.wrapper.append(el("label", { for: input.id }, [input, " " + info.title]), pathCode(info), shell.errors);
    if (shell.help) shell.wrapper.append(shell.help);
    const node = messagesMixin({ el: shell.wrapper, info: info }, shell, () => [input]);
    node.set = function (v) {
      input.checked = v === true;
    };
    node.get = function () {
      return input.checked;
    };
    node.problems = function () {
      return [];
    };
    nodeOfControl.set(input, node);
    node.set(value);
    return node;
  }

  function selectNode(choices, info, value) {
    const shell = fieldShell(info);
    const select = el("select", { id: shell.id, "data-param-path": info.path });
    const empty = info.nullable || (info.required && !info.hasDefault);
    if (empty) select.append(el("option", { value: "", text: info.nullable ? "— none —" : "— choose —" }));
    choices.forEach((choice, i) => select.append(el("option", { value: String(i), text: shown(choice) })));
    const node = labelledControlNode(shell, info, select);
    node.set = function (v) {
      const i = choices.findIndex((c) => JSON.stringify(c) === JSON.stringify(v));
      select.value = i >= 0 ? String(i) : empty ? "" : "0";
    };
    node.get = function () {
      if (select.value === "") return info.nullable ? null : undefined;
      return choices[Number(select.value)];
    };
    node.problems = function () {
      return select.value === "" && !info.nullable ? ["Required."] : [];
    };
    nodeOfControl.set(select, node);
    node.set(value);
    return node;
  }

  function smallChoices(items) {
    // The values of a list's items when they are a few known ones (an enum, or integers 1-4); else null.
    const choices = choicesOf(items);
    if (choices && choices.length <= SMALL_CHOICE) return choices;
    if (items.type === "integer" && items.minimum !== undefined && items.maximum !== undefined) {
      const span = items.maximum - items.minimum + 1;
      if (span <= SMALL_CHOICE) return Array.from({ length: span }, (_, i) => items.minimum + i);
    }
    return null;
  }

  function listProblems(values, schema) {
    const n = values.length;
    if (schema.minItems !== undefined && n < schema.minItems) {
      return ["Choose at least " + schema.minItems + "."];
    }
    if (schema.maxItems !== undefined && n > schema.maxItems) return ["At most " + schema.maxItems + "."];
    if (schema.uniqueItems && new Set(values.map((v) => JSON.stringify(v))).size !== n) {
      return ["Each value only once."];
    }
    return [];
  }

  function checkboxGroupNode(schema, choices, info, value) {
    const shell = fieldShell(info);
    const legend = el("legend", { text: info.title });
    const boxes = choices.map((choice) => {
      const box = el("input", { type: "checkbox", value: JSON.stringify(choice), "data-param-path": info.path });
      describe(box, shell);
      return box;
    });
    const row = el("div", {}, boxes.map((box, i) => el("label", {}, [box, " " + shown(choices[i])])));
    shell.wrapper.classList.add("param-choices");
    shell.wrapper.append(el("fieldset", {}, [legend, pathCode(info), row]), shell.errors);
    if (shell.help) shell.wrapper.append(shell.help);
    const node = messagesMixin({ el: shell.wrapper, info: info }, shell, () => boxes);
    node.set = function (v) {
      const chosen = new Set((Array.isArray(v) ? v : []).map((c) => JSON.stringify(c)));
      boxes.forEach((box) => (box.checked = chosen.has(box.value)));
    };
    node.get = function () {
      const values = boxes.filter((box) => box.checked).map((box) => JSON.parse(box.value));
      return values.length === 0 && info.nullable ? null : values;
    };
    node.problems = function () {
      const values = node.get();
      return values === null ? [] : listProblems(values, schema);
    };
    boxes.forEach((box) => nodeOfControl.set(box, node));
    node.set(value);
    return node;
  }

  function itemListNode(schema, items, info, value) {
    // A list of numbers or names: one input each, with Remove, and Add below.
    info.emptyMeansNone = true;
    const shell = fieldShell(info, "param-list");
    const list = el("ol", { className: "param-items" });
    const addButton = el("button", { type: "button", className: "button button-small", text: "Add" });
    const legend = el("legend", { text: info.title });
    shell.wrapper.append(el("fieldset", {}, [legend, pathCode(info), list, addButton]), shell.errors);
    if (shell.help) shell.wrapper.append(shell.help);
    const numeric = items.type === "integer" || items.type === "number";
    const inputs = () => Array.from(list.querySelectorAll("input"));
    const node = messagesMixin({ el: shell.wrapper, info: info }, shell, inputs);

    function renumber() {
      inputs().forEach((input, i) => {
        input.setAttribute("aria-label", info.title + ", item " + (i + 1));
        input.setAttribute("data-param-path", info.path + "." + i);
      });
      addButton.disabled = schema.maxItems !== undefined && inputs().length >= schema.maxItems;
    }

    function addItem(v) {
      const input = el("input", numeric
        ? { type: "number", min: items.minimum, max: items.maximum, step: items.type === "integer" ? "1" : "any" }
        : { type: "text", maxlength: items.maxLength, spellcheck: "false" });
      describe(input, shell);
      input.value = v === undefined || v === null ? "" : String(v);
      const remove = el("button", { type: "button", className: "link-button param-remove", text: "Remove" });
      remove.addEventListener("click", function () {
        item.remove();
        renumber();
        node.edited();
        changed();
      });
      const item = el("li", {}, [input, remove]);
      list.append(item);
      nodeOfControl.set(input, node);
      renumber();
      return input;
    }

    addButton.addEventListener("click", function () {
      addItem(undefined).focus();
      changed();
    });
    node.set = function (v) {
      list.replaceChildren();
      (Array.isArray(v) ? v : []).forEach(addItem);
      renumber();
    };
    node.get = function () {
      const values = inputs()
        .filter((input) => input.value !== "")
        .map((input) => (numeric ? Number(input.value) : input.value));
      return values.length === 0 && info.nullable ? null : values;
    };
    node.problems = function () {
      const problems = [];
      inputs().forEach((input, i) => {
        let found;
        if (input.value === "") found = [numeric ? "Enter a number or remove it." : "Enter a value or remove it."];
        else found = numeric ? numberProblems(Number(input.value), items) : stringProblems(input.value, items);
        found.forEach((m) => problems.push("Item " + (i + 1) + ": " + m));
      });
      const values = node.get();
      return values === null ? problems : problems.concat(listProblems(values, schema));
    };
    node.set(value);
    return node;
  }

  function jsonNode(info, value) {
    // A shape the builder does not know (a list of objects, a map): a small JSON textarea of its own.
    info.description = [firstParagraph(info.description), "JSON."].filter(Boolean).join(" ");
    const shell = fieldShell(info, "param-json-value");
    const input = el("textarea", {
      id: shell.id,
      rows: 3,
      spellcheck: "false",
      className: "json-input",
      "data-param-path": info.path,
    });
    const node = labelledControlNode(shell, info, input);
    node.set = function (v) {
      input.value = v === undefined ? "" : JSON.stringify(v, null, 2);
    };
    node.get = function () {
      if (input.value.trim() === "") return info.nullable ? null : undefined;
      try {
        return JSON.parse(input.value);
      } catch (e) {
        return undefined;
      }
    };
    node.problems = function () {
      if (input.value.trim() === "") return info.required ? ["Required."] : [];
      try {
        JSON.parse(input.value);
        return [];
      } catch (e) {
        return ["Not valid JSON: " + e.message];
      }
    };
    nodeOfControl.set(input, node);
    node.set(value);
    return node;
  }

  function objectNode(schema, info, value, container) {
    // Nested params as a fieldset (the top-level params straight into `container`).
    const shell = container ? null : fieldShell(Object.assign({}, info, { hasDefault: false, required: false }));
    let body = container;
    if (!container) {
      body = el("fieldset", { className: "param-group param-fields", "data-path": info.path }, [
        el("legend", { text: info.title }),
      ]);
      if (shell.help) body.append(shell.help);
      body.append(shell.errors);
      shell.wrapper = body;
    }
    const defaults = isObject(info.defaultValue) ? info.defaultValue : {};
    const children = {};
    const constants = {};
    const required = schema.required || [];
    for (const [name, prop] of Object.entries(schema.properties || {})) {
      const inner = resolve(prop);
      if ("const" in inner) {
        constants[name] = inner.const; // the tag of an alternative: chosen by its union's select
        continue;
      }
      const childInfo = {
        name: name,
        path: info.path ? info.path + "." + name : name,
        title: prop.title || humanize(name),
        required: required.includes(name) && !("default" in prop) && !(name in defaults),
      };
      // A child's default is its part of this object's default (training.model.n_heads is 4 in the
      // training default, though a NativeConfig's own is 8), else its own.
      children[name] = build(prop, childInfo, undefined, defaults[name]);
      body.append(children[name].el);
    }
    const node = shell
      ? messagesMixin({ el: body, info: info }, shell, () => [], "param-group-invalid")
      : { el: body, info: info, showServer: null };
    node.set = function (v) {
      const given = isObject(v) ? v : {};
      for (const [name, child] of Object.entries(children)) {
        child.set(name in given ? given[name] : child.defaultValue);
      }
    };
    node.get = function () {
      const out = Object.assign({}, constants);
      for (const [name, child] of Object.entries(children)) {
        const v = child.get();
        if (v !== undefined) out[name] = v;
      }
      return out;
    };
    node.problems = function () {
      return [];
    };
    node.check = function (show) {
      let bad = [];
      for (const child of Object.values(children)) bad = bad.concat(child.check(show));
      return bad;
    };
    node.find = function (parts) {
      const child = parts.length ? children[parts[0]] : null;
      return child ? child.find(parts.slice(1)) : { node: node, rest: parts };
    };
    node.focus = function () {
      const first = Object.values(children)[0];
      if (first) first.focus();
    };
    node.set(value);
    return node;
  }

  function unionNode(schema, union, info, value) {
    // Alternatives told apart by a tag (`source`): a select of them, then the chosen one's own fields.
    const shell = fieldShell(Object.assign({}, info, { hasDefault: false, required: false }));
    const tagProp = (union.branches[0].schema.properties || {})[union.tag] || {};
    const fieldset = el("fieldset", { className: "param-group param-union", "data-path": info.path }, [
      el("legend", { text: info.title }),
    ]);
    if (shell.help) fieldset.append(shell.help);
    fieldset.append(shell.errors);
    shell.wrapper = fieldset;
    const tagInfo = {
      name: union.tag,
      path: info.path ? info.path + "." + union.tag : union.tag,
      title: tagProp.title || humanize(union.tag),
    };
    const tagShell = fieldShell(tagInfo, "param-tag");
    const select = el("select", { id: tagShell.id, "data-param-path": tagInfo.path });
    union.branches.forEach((b, i) => select.append(el("option", { value: String(i), text: shown(b.value) })));
    describe(select, tagShell);
    tagShell.wrapper.append(label(tagInfo, select), pathCode(tagInfo), select, tagShell.errors);
    const branchBox = el("div", { className: "param-branch" });
    fieldset.append(tagShell.wrapper, branchBox);

    const defaultValue = info.defaultValue;
    const built = new Map(); // what was typed into each alternative stays when switching back
    let current = null;
    const node = messagesMixin({ el: fieldset, info: info }, shell, () => [select], "param-group-invalid");

    function branchIndex(v) {
      const tagValue = v && typeof v === "object" ? v[union.tag] : undefined;
      const i = union.branches.findIndex((b) => b.value === tagValue);
      return i >= 0 ? i : 0;
    }

    function branchDefault(i) {
      // The union's default when it is this alternative, else the alternative's own defaults.
      if (isObject(defaultValue) && branchIndex(defaultValue) === i) return defaultValue;
      return example(union.branches[i].schema);
    }

    function show(i, v) {
      if (!built.has(i)) {
        const branchInfo = { path: info.path, title: info.title, defaultValue: branchDefault(i) };
        const start = v !== undefined ? v : branchInfo.defaultValue;
        built.set(i, objectNode(union.branches[i].schema, branchInfo, start, el("div", { className: "param-fields" })));
      } else if (v !== undefined) {
        built.get(i).set(v);
      }
      current = built.get(i);
      select.value = String(i);
      branchBox.replaceChildren(current.el);
    }

    select.addEventListener("change", function () {
      show(Number(select.value));
      changed();
    });
    // Choosing an alternative clears the union's own messages; its new fields are checked as they change.
    nodeOfControl.set(select, {
      edited: function () {
        node.serverMessages = [];
        node.render();
      },
      check: function () {
        return [];
      },
    });
    node.set = function (v) {
      const i = branchIndex(v);
      show(i, isObject(v) ? v : branchDefault(i));
    };
    node.get = function () {
      return current.get();
    };
    node.problems = function () {
      return [];
    };
    const ownCheck = node.check;
    node.check = function (show_) {
      return ownCheck(show_).concat(current.check(show_));
    };
    node.find = function (parts) {
      // Pydantic names the chosen alternative in the path: model.native.config.n_layers.
      if (parts.length && parts[0] === String(union.branches[Number(select.value)].value)) parts = parts.slice(1);
      if (parts.length === 0) return { node: node, rest: [] };
      const found = current.find(parts);
      return found.node === current ? { node: node, rest: found.rest } : found;
    };
    node.set(value);
    return node;
  }

  function build(prop, info, value, inherited) {
    // The node for one property: `prop` as the schema has it (own title, description and default);
    // `inherited`, its part of the enclosing object's default, when there is one.
    const split = splitNullable(prop);
    const schema = split.schema;
    info.nullable = split.nullable;
    info.description = schema.description;
    info.defaultValue = inherited !== undefined ? clone(inherited) : example(prop);
    info.hasDefault = inherited !== undefined || "default" in schema;
    info.default = info.defaultValue;
    if (value === undefined) value = info.defaultValue;
    let node;
    const union = info.nullable ? null : unionOf(schema);
    const choices = union ? null : choicesOf(schema);
    if (union) node = unionNode(schema, union, info, value);
    else if (choices) node = selectNode(choices, info, value);
    else if (schema.type === "boolean" && info.nullable) node = selectNode([true, false], info, value);
    else if (schema.type === "boolean") node = checkboxNode(info, value);
    else if (schema.type === "integer" || schema.type === "number") node = numberNode(schema, info, value);
    else if (schema.type === "string") node = textNode(schema, info, value);
    else if (schema.type === "array") {
      const items = resolve(schema.items || {});
      const small = smallChoices(items);
      if (small) node = checkboxGroupNode(schema, small, info, value);
      else if (["integer", "number", "string"].includes(items.type)) node = itemListNode(schema, items, info, value);
    } else if (schema.properties && !info.nullable) node = objectNode(schema, info, value);
    if (!node) node = jsonNode(info, value);
    node.defaultValue = info.defaultValue;
    return node;
  }

  // ---- The page: builder, advanced JSON, messages, submit ------------------------------------

  function parseObject(text) {
    // {value} for a JSON object, {error} otherwise.
    if (text.trim() === "") return { value: {} };
    try {
      const value = JSON.parse(text);
      if (!isObject(value)) return { error: "The params must be one JSON object: { … }." };
      return { value: value };
    } catch (e) {
      return { error: "Not valid JSON: " + e.message };
    }
  }

  const initial = parseObject(textarea.value);
  const rootDefaults = example(rootSchema);
  const rootInfo = { path: "", title: "", defaultValue: rootDefaults };
  const root = objectNode(rootSchema, rootInfo, initial.value || rootDefaults, builderRoot);
  if (Object.keys(rootSchema.properties || {}).length === 0) {
    builderRoot.append(el("p", { className: "muted", text: "This kind takes no parameters." }));
  }

  // The JSON side: a message of its own, a toggle to show it instead of the fields.
  const jsonErrors = el("ul", { className: "errorlist", id: "id_params_json_error", hidden: true });
  jsonField.insertBefore(jsonErrors, textarea.nextSibling);
  const toggle = el("button", {
    type: "button",
    className: "button button-small param-mode",
    "aria-controls": "id_params",
    "aria-expanded": "false",
  });
  topErrors.parentNode.insertBefore(toggle, topErrors);
  let jsonMode = false;

  function showJsonError(message) {
    jsonErrors.replaceChildren(...(message ? [el("li", { text: message })] : []));
    jsonErrors.hidden = !message;
    jsonField.classList.toggle("field-invalid", Boolean(message));
    if (message) textarea.setAttribute("aria-invalid", "true");
    else textarea.removeAttribute("aria-invalid");
  }

  function setMode(json) {
    jsonMode = json;
    builderRoot.hidden = json;
    jsonField.hidden = !json;
    toggle.textContent = json ? "Back to the fields" : "Advanced: edit JSON";
    toggle.setAttribute("aria-expanded", json ? "true" : "false");
  }

  function changed() {
    // The fields changed: the JSON follows.
    textarea.value = JSON.stringify(root.get(), null, 2);
    showJsonError("");
  }

  builderRoot.addEventListener("input", function (event) {
    const node = nodeOfControl.get(event.target);
    if (node) node.edited();
    changed();
  });
  builderRoot.addEventListener("change", function (event) {
    const node = nodeOfControl.get(event.target);
    if (node) {
      node.edited();
      node.check(true);
    }
    changed();
  });

  textarea.addEventListener("input", function () {
    // The JSON changed: the fields follow while it is a valid object.
    const parsed = parseObject(textarea.value);
    showJsonError(parsed.error || "");
    if (parsed.value) {
      root.set(parsed.value);
      root.check(false);
    }
  });

  toggle.addEventListener("click", function () {
    if (!jsonMode) {
      setMode(true);
      textarea.focus();
      return;
    }
    const parsed = parseObject(textarea.value);
    if (parsed.error) {
      showJsonError(parsed.error + " Fix it to go back to the fields.");
      textarea.focus();
      return;
    }
    root.set(parsed.value);
    setMode(false);
    root.check(true);
  });

  form.addEventListener("submit", function (event) {
    if (jsonMode) {
      // The JSON goes as typed; the server checks it and names what is wrong.
      const parsed = parseObject(textarea.value);
      if (parsed.error) {
        event.preventDefault();
        showJsonError(parsed.error);
        textarea.focus();
      }
      return;
    }
    const bad = root.check(true);
    if (bad.length) {
      event.preventDefault();
      bad[0].focus();
      return;
    }
    textarea.value = JSON.stringify(root.get(), null, 2);
  });

  // The server's messages: each beside the field its dotted path names; the rest stay at the top.
  function restText(rest) {
    if (!rest.length) return "";
    if (!/^\d+$/.test(rest[0])) return rest.join(".") + ": ";
    const inner = rest.length > 1 ? " (" + rest.slice(1).join(".") + ")" : "";
    return "Item " + (Number(rest[0]) + 1) + inner + ": ";
  }

  let firstPlaced = null;
  for (const item of Array.from(topErrors.querySelectorAll("li[data-param-path]"))) {
    const path = item.getAttribute("data-param-path");
    if (!path || !initial.value) continue;
    const found = root.find(path.split("."));
    if (!found.node || found.node === root || !found.node.showServer) continue;
    const message = item.querySelector(".param-message");
    found.node.showServer(restText(found.rest) + (message ? message.textContent : item.textContent));
    firstPlaced = firstPlaced || found.node;
    item.remove();
  }
  topErrors.hidden = topErrors.querySelectorAll("li").length === 0;

  builderRoot.hidden = false;
  setMode(!initial.value);
  if (initial.error && topErrors.hidden) showJsonError(initial.error);
  // Bring the first misplaced value into view, unless a field above the params needs fixing too.
  const invalidAbove = Array.from(form.querySelectorAll(".field-invalid")).some((f) => !f.closest(".param-section"));
  if (firstPlaced && !invalidAbove) firstPlaced.focus();
})();
