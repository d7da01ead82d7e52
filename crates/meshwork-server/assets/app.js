// Meshwork's pages: keyboard shortcuts and the search box's list of results. Hand-written, no
// build step; it runs beside htmx under a Content-Security-Policy that allows no inline script.
(() => {
  'use strict';

  const box = () => document.getElementById('global-search');
  const list = () => document.getElementById('search-results');
  const options = () => Array.from(list()?.querySelectorAll('[role=option]') ?? []);

  function setOpen(open) {
    const b = box();
    const l = list();
    if (!b || !l) return;
    const show = open && l.childElementCount > 0;
    b.setAttribute('aria-expanded', show ? 'true' : 'false');
    l.classList.toggle('open', show);
  }

  function select(i) {
    const b = box();
    const opts = options();
    opts.forEach((o, j) => o.setAttribute('aria-selected', j === i ? 'true' : 'false'));
    if (opts[i]) {
      b.setAttribute('aria-activedescendant', opts[i].id);
      opts[i].scrollIntoView({ block: 'nearest' });
    } else {
      b.removeAttribute('aria-activedescendant');
    }
  }

  document.addEventListener('keydown', (e) => {
    const b = box();
    if (!b) return;
    const typing = e.target.closest && e.target.closest('input, textarea, select, [contenteditable]');
    const k = e.key.toLowerCase();
    if ((e.key === '/' && !typing) || (k === 'k' && (e.ctrlKey || e.metaKey))) {
      e.preventDefault();
      b.focus();
      b.select();
      return;
    }
    if (e.target !== b) return;
    const opts = options();
    const cur = opts.findIndex((o) => o.getAttribute('aria-selected') === 'true');
    if (e.key === 'ArrowDown') {
      e.preventDefault();
      setOpen(true);
      select(Math.min(cur + 1, opts.length - 1));
    } else if (e.key === 'ArrowUp') {
      e.preventDefault();
      select(Math.max(cur - 1, 0));
    } else if (e.key === 'Enter' && cur >= 0) {
      e.preventDefault();
      window.location.assign(opts[cur].href);
    } else if (e.key === 'Escape') {
      setOpen(false);
      select(-1);
    }
  });

  // New results: show them, nothing selected yet.
  document.addEventListener('htmx:afterSwap', (e) => {
    if (e.target === list()) {
      setOpen(document.activeElement === box());
      select(-1);
    }
  });

  // The list closes when focus leaves the search form.
  document.addEventListener('focusout', (e) => {
    const form = box()?.form;
    if (form && form.contains(e.target) && !form.contains(e.relatedTarget)) setOpen(false);
  });
  document.addEventListener('focusin', (e) => {
    if (e.target === box()) setOpen(true);
  });
})();

// The pipeline board: dragging a card onto another stage posts the card's own "Move to" form
// (the same form the keyboard uses), so both ways go through one checked path.
(() => {
  'use strict';
  let dragged = null;
  document.addEventListener('dragstart', (e) => {
    const card = e.target.closest && e.target.closest('.deal-card[draggable=true]');
    if (!card) return;
    dragged = card;
    card.classList.add('dragging');
    e.dataTransfer.effectAllowed = 'move';
    e.dataTransfer.setData('text/plain', card.dataset.deal);
  });
  document.addEventListener('dragend', () => {
    dragged?.classList.remove('dragging');
    dragged = null;
    document.querySelectorAll('.column.drop').forEach((c) => c.classList.remove('drop'));
  });
  document.addEventListener('dragover', (e) => {
    const column = dragged && e.target.closest && e.target.closest('.column');
    if (!column) return;
    e.preventDefault();
    document.querySelectorAll('.column.drop').forEach((c) => c !== column && c.classList.remove('drop'));
    column.classList.add('drop');
  });
  document.addEventListener('drop', (e) => {
    const column = dragged && e.target.closest && e.target.closest('.column');
    if (!column) return;
    e.preventDefault();
    const form = dragged.querySelector('form.move');
    const select = form?.querySelector('select[name=stage]');
    if (!form || !select || select.value === column.dataset.stage) return;
    select.value = column.dataset.stage;
    form.requestSubmit();
  });
})();

// A form is sent once: its submit buttons wait for the answer (the server also makes a second
// submit of a creating form create nothing).
document.addEventListener('submit', (e) => {
  const form = e.target;
  if (form.method !== 'post' || e.defaultPrevented) return;
  if (form.dataset.sent) {
    e.preventDefault();
    return;
  }
  form.dataset.sent = '1';
  form.querySelectorAll('button[type=submit]').forEach((b) => b.setAttribute('aria-disabled', 'true'));
});
// A page shown again from the back-forward cache may send its forms again.
window.addEventListener('pageshow', (e) => {
  if (!e.persisted) return;
  document.querySelectorAll('form[data-sent]').forEach((f) => {
    delete f.dataset.sent;
    f.querySelectorAll('button[aria-disabled]').forEach((b) => b.removeAttribute('aria-disabled'));
  });
});

// The appearance choices on the account page: applied at once and remembered in this browser.
(() => {
  'use strict';
  const section = document.getElementById('appearance');
  if (!section) return;
  section.hidden = false;
  const root = document.documentElement;
  const stored = (k, fallback) => {
    try {
      return localStorage.getItem(k) ?? fallback;
    } catch (_) {
      return fallback;
    }
  };
  const current = { theme: stored('meshwork.theme', 'system'), size: stored('meshwork.size', 'standard') };
  section.querySelectorAll('input[type=radio]').forEach((input) => {
    input.checked = current[input.name] === input.value;
    input.addEventListener('change', () => {
      try {
        localStorage.setItem(`meshwork.${input.name}`, input.value);
      } catch (_) {}
      const attr = input.name === 'theme' ? 'theme' : 'size';
      const value = input.value === 'system' || input.value === 'standard' ? null : input.value;
      if (value) root.dataset[attr] = value;
      else delete root.dataset[attr];
    });
  });
})();

// Times are written in UTC by the server; shown in the reader's own time zone where script runs.
(() => {
  const format = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  const localize = (scope) =>
    scope.querySelectorAll('time[datetime]').forEach((t) => {
      const d = new Date(t.getAttribute('datetime'));
      if (!Number.isNaN(d.getTime())) {
        t.title = t.textContent;
        t.textContent = format.format(d);
      }
    });
  localize(document);
  document.addEventListener('htmx:afterSwap', (e) => localize(e.target));
})();

// Editing a list's cell in place: the form that htmx swaps into the cell takes the focus, Escape
// cancels it, and the saved (or restored) value takes the focus back, so a keyboard user never
// loses their place in the table.
(() => {
  'use strict';
  // After settling: htmx has then wired up the new form, so Enter sends it through htmx.
  document.addEventListener('htmx:afterSettle', (e) => {
    const cell = e.target;
    if (!(cell instanceof HTMLTableCellElement)) return;
    const field = cell.querySelector('.cell-form input:not([type=hidden]), .cell-form select');
    if (field) {
      field.focus();
      if (field.select) field.select();
      return;
    }
    cell.querySelector('.cell-link')?.focus();
  });
  // A cell's link leads to its field on the record's page; with script it opens the cell's
  // form in place instead (the link carries no htmx attributes: a list of 50 rows would ship
  // them 200 times).
  document.addEventListener('click', (e) => {
    const link = e.target.closest && e.target.closest('a.cell-link');
    if (!link || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || !window.htmx) return;
    const url = new URL(link.href);
    const field = url.hash.replace(/^#f-/, '');
    if (!field) return;
    e.preventDefault();
    window.htmx.ajax('GET', `${url.pathname}/cell/${field}`, { target: link.closest('td'), swap: 'innerHTML' });
  });
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape') return;
    const form = e.target.closest && e.target.closest('.cell-form');
    if (!form) return;
    e.preventDefault();
    form.querySelector('.cell-cancel')?.click();
  });
})();

// Attaching a file on a record's page: a file dropped on the zone is put in the form's file
// input, and the form is sent by XMLHttpRequest so a progress bar shows how far the upload is.
// A file over the limit is named before anything is sent (the server checks it again). Without
// script the form posts as usual.
(() => {
  'use strict';
  const mib = (n) => `${(n / 1048576).toFixed(1)} MiB`;
  function send(form) {
    const input = form.querySelector('input[type=file]');
    const status = form.querySelector('.upload-status');
    const bar = form.querySelector('.upload-progress');
    const file = input?.files?.[0];
    if (!file) return;
    const max = Number(form.dataset.maxBytes);
    if (max && file.size > max) {
      status.textContent = `${file.name} is ${mib(file.size)}; a file is at most ${mib(max)}. Nothing was sent.`;
      status.classList.add('error');
      return;
    }
    status.classList.remove('error');
    status.textContent = `Uploading ${file.name}…`;
    bar.hidden = false;
    bar.value = 0;
    const xhr = new XMLHttpRequest();
    xhr.open('POST', form.action);
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100);
    });
    xhr.addEventListener('load', () => {
      if (xhr.status < 400) {
        // The record's page, with the file in its list.
        window.location.assign(xhr.responseURL || window.location.href);
        return;
      }
      bar.hidden = true;
      const page = new DOMParser().parseFromString(xhr.responseText, 'text/html');
      const why = page.querySelector('#file-error, .error, main p');
      status.textContent = why ? why.textContent : `The upload failed (${xhr.status}).`;
      status.classList.add('error');
    });
    xhr.addEventListener('error', () => {
      bar.hidden = true;
      status.textContent = 'The upload was cut off; check the connection and try again.';
      status.classList.add('error');
    });
    xhr.send(new FormData(form));
  }
  // Capturing, so the "sent once" handler below sees the submit already handled.
  document.addEventListener(
    'submit',
    (e) => {
      const form = e.target.closest && e.target.closest('form.upload');
      if (!form) return;
      e.preventDefault();
      send(form);
    },
    true,
  );
  document.addEventListener('dragover', (e) => {
    const zone = e.target.closest && e.target.closest('form.upload .dropzone');
    if (!zone || !e.dataTransfer?.types?.includes('Files')) return;
    e.preventDefault();
    zone.classList.add('drop');
  });
  document.addEventListener('dragleave', (e) => {
    const zone = e.target.closest && e.target.closest('form.upload .dropzone');
    if (zone && !zone.contains(e.relatedTarget)) zone.classList.remove('drop');
  });
  document.addEventListener('drop', (e) => {
    const zone = e.target.closest && e.target.closest('form.upload .dropzone');
    if (!zone || !e.dataTransfer?.files?.length) return;
    e.preventDefault();
    zone.classList.remove('drop');
    const form = zone.closest('form');
    form.querySelector('input[type=file]').files = e.dataTransfer.files;
    send(form);
  });
})();

(() => {
  'use strict';
  // Every password field gets a "Show" button (OWASP ASVS 2.1.12), so a person can check what
  // they typed. Its name says which field ("Show current password") and turns to "Hide" while
  // the text shows; the field is masked again when its form is sent.
  function addReveal(input) {
    if (!input.id || input.dataset.reveal) return;
    input.dataset.reveal = 'on';
    const label = document.querySelector(`label[for="${CSS.escape(input.id)}"]`);
    const what = (label ? label.textContent : 'password').trim().toLowerCase();
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'quiet reveal';
    button.setAttribute('aria-controls', input.id);
    const word = document.createElement('span');
    word.textContent = 'Show';
    const hidden = document.createElement('span');
    hidden.className = 'visually-hidden';
    hidden.textContent = ` ${what}`;
    button.append(word, hidden);
    button.addEventListener('click', () => {
      const show = input.type === 'password';
      input.type = show ? 'text' : 'password';
      word.textContent = show ? 'Hide' : 'Show';
    });
    input.insertAdjacentElement('afterend', button);
  }
  document.querySelectorAll('input[type=password]').forEach(addReveal);
  document.addEventListener(
    'submit',
    (e) => {
      e.target.querySelectorAll?.('input[data-reveal]').forEach((i) => {
        i.type = 'password';
      });
      e.target.querySelectorAll?.('button.reveal > span:first-child').forEach((w) => {
        w.textContent = 'Show';
      });
    },
    true,
  );
})();

(() => {
  'use strict';
  // A strength meter under each new account password (OWASP ASVS 2.1.8), judged as the server
  // judges length: runs of spaces count as one, 12 to 128 characters, longer is stronger. The
  // server still has the last word (it also refuses well-known passwords, which only it knows).
  function judge(value) {
    const n = Array.from(value.replace(/ {2,}/g, ' ')).length;
    const raw = Array.from(value).length;
    const distinct = new Set(Array.from(value)).size;
    if (n === 0) return [0, ''];
    if (n < 12) return [0, `Too short: ${n} of at least 12 characters.`];
    if (raw > 128) return [0, 'Too long: at most 128 characters.'];
    if (distinct < 5) return [0, 'Too repetitive: use at least 5 different characters.'];
    if (n < 16) return [1, `Fair (${n} characters). Longer is stronger: a few words make a good password.`];
    if (n < 20) return [2, `Good (${n} characters).`];
    return [3, `Strong (${n} characters).`];
  }
  document.querySelectorAll('input[data-strength]').forEach((input) => {
    const meter = document.createElement('meter');
    meter.min = 0;
    meter.max = 3;
    meter.low = 1;
    meter.high = 2;
    meter.optimum = 3;
    meter.value = 0;
    meter.className = 'strength';
    meter.setAttribute('aria-hidden', 'true');
    const said = document.createElement('p');
    said.className = 'strength muted';
    said.id = `${input.id}-strength`;
    said.setAttribute('aria-live', 'polite');
    const after = input.nextElementSibling?.classList.contains('reveal') ? input.nextElementSibling : input;
    after.insertAdjacentElement('afterend', said);
    after.insertAdjacentElement('afterend', meter);
    const described = input.getAttribute('aria-describedby');
    input.setAttribute('aria-describedby', described ? `${described} ${said.id}` : said.id);
    const update = () => {
      const [level, text] = judge(input.value);
      meter.value = level;
      meter.hidden = text === '';
      said.textContent = text;
    };
    input.addEventListener('input', update);
    update();
  });

  // Security keys (WebAuthn). An element with data-webauthn="create" (adding a key) or "get"
  // (signing in) holds the server's options in data-options; the key's answer goes into its
  // form's `credential` field as JSON and the form is sent. It starts at once, and again from
  // the element's button (after a cancel, or a key plugged in late).
  const fromB64url = (s) => {
    const b = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
    return Uint8Array.from(b, (c) => c.charCodeAt(0)).buffer;
  };
  const toB64url = (buf) =>
    btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const withIds = (list) => (list ?? []).map((c) => ({ ...c, id: fromB64url(c.id) }));
  function creationOptions(o) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) return PublicKeyCredential.parseCreationOptionsFromJSON(o);
    return { ...o, challenge: fromB64url(o.challenge), user: { ...o.user, id: fromB64url(o.user.id) }, excludeCredentials: withIds(o.excludeCredentials) };
  }
  function requestOptions(o) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) return PublicKeyCredential.parseRequestOptionsFromJSON(o);
    return { ...o, challenge: fromB64url(o.challenge), allowCredentials: withIds(o.allowCredentials) };
  }
  function answer(cred) {
    if (cred.toJSON) return cred.toJSON();
    const r = cred.response;
    const response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toB64url(r.authenticatorData);
      response.signature = toB64url(r.signature);
      if (r.userHandle) response.userHandle = toB64url(r.userHandle);
    }
    return { id: cred.id, rawId: toB64url(cred.rawId), type: cred.type, response, clientExtensionResults: cred.getClientExtensionResults() };
  }
  document.querySelectorAll('[data-webauthn]').forEach((block) => {
    const form = block.querySelector('form');
    const status = block.querySelector('[data-webauthn-status]');
    const button = block.querySelector('[data-webauthn-start]');
    if (!window.PublicKeyCredential) {
      status.textContent = 'This browser cannot use security keys. Use a code instead.';
      button.hidden = true;
      return;
    }
    let busy = false;
    const run = async () => {
      if (busy) return;
      busy = true;
      button.disabled = true;
      try {
        const o = JSON.parse(block.dataset.options).publicKey;
        const cred = block.dataset.webauthn === 'create'
          ? await navigator.credentials.create({ publicKey: creationOptions(o) })
          : await navigator.credentials.get({ publicKey: requestOptions(o) });
        form.elements.credential.value = JSON.stringify(answer(cred));
        status.textContent = 'Checking the key\u2019s answer\u2026';
        form.submit();
      } catch (e) {
        status.textContent = e && e.name === 'InvalidStateError'
          ? 'This security key is registered already.'
          : 'The security key did not answer, or it was cancelled. Try again, or use a code.';
        button.disabled = false;
        busy = false;
      }
    };
    button.addEventListener('click', run);
    run();
  });
})();
