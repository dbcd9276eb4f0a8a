/* hopthu live-chat widget: no framework, Shadow DOM, Vietnamese first. Visitor and agent text is only ever
   inserted with textContent, never as HTML. Served by inbox/webchat.py, which fills in the config below. */
(function (C) {
  "use strict";
  var W = window;
  if (!W.WebSocket || !document.body || !document.body.attachShadow) return;
  W.__hopthu = W.__hopthu || {};
  if (W.__hopthu[C.token]) return;
  var S = W.hopthuSettings || {};
  var base = C.base;
  try {
    var cur = document.currentScript;
    if (cur && cur.src) base = new URL(cur.src).origin;
  } catch (e) {}
  var T = {
    vi: {
      open: "Chat với chúng tôi", close: "Đóng", send: "Gửi", placeholder: "Nhập tin nhắn…",
      greeting: "Xin chào 👋 Chúng tôi có thể giúp gì cho bạn?", online: "Thường trả lời trong vài phút",
      offline: "Đang kết nối lại…", typing: "Nhân viên đang soạn tin…", failed: "Chưa gửi được",
      retry: "Thử lại", attach: "Gửi ảnh", removed: "Tin nhắn đã được thu hồi", sending: "Đang gửi…",
      tooBig: "Ảnh tối đa {n} MB", badType: "Chỉ gửi được ảnh PNG, JPEG, GIF hoặc WebP",
      formIntro: "Để lại thông tin để chúng tôi liên hệ lại khi bạn rời trang:", name: "Họ tên",
      phone: "Số điện thoại", email: "E-mail", save: "Lưu", skip: "Bỏ qua",
      consent: "Tôi đồng ý để cửa hàng lưu các thông tin này để liên hệ và hỗ trợ tôi.", saved: "Đã lưu thông tin, cảm ơn bạn!",
      image: "Ảnh", you: "Bạn", staff: "Nhân viên"
    },
    en: {
      open: "Chat with us", close: "Close", send: "Send", placeholder: "Type a message…",
      greeting: "Hi 👋 How can we help?", online: "We usually reply within minutes", offline: "Reconnecting…",
      typing: "An agent is typing…", failed: "Not sent", retry: "Retry", attach: "Send a picture",
      removed: "This message was removed", sending: "Sending…", tooBig: "Pictures up to {n} MB",
      badType: "Only PNG, JPEG, GIF or WebP pictures", formIntro: "Leave your details so we can get back to you:",
      name: "Name", phone: "Phone", email: "E-mail", save: "Save", skip: "Skip",
      consent: "I agree that the shop keeps these details to contact and help me.", saved: "Saved, thank you!",
      image: "Picture", you: "You", staff: "Agent"
    }
  }[(S.locale || C.locale || "vi").slice(0, 2) === "en" ? "en" : "vi"];
  var KEY = "hopthu:" + C.token + ":";
  function load(k) { try { return W.localStorage.getItem(KEY + k); } catch (e) { return null; } }
  function save(k, v) { try { if (v == null) W.localStorage.removeItem(KEY + k); else W.localStorage.setItem(KEY + k, v); } catch (e) {} }
  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text != null) n.textContent = String(text);
    return n;
  }
  function icon(path) {
    var NS = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    var p = document.createElementNS(NS, "path");
    p.setAttribute("d", path);
    svg.appendChild(p);
    return svg;
  }
  function absolute(url) {
    if (typeof url !== "string") return null;
    if (url.charAt(0) === "/" && url.charAt(1) !== "/") return base + url;
    return /^https:\/\//i.test(url) ? url : null;
  }
  function newId() {
    var a = new Uint8Array(12);
    (W.crypto || W.msCrypto).getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  /* ---- DOM ---- */
  var host = el("div");
  host.id = "hopthu-widget-" + C.token;
  host.setAttribute("data-hopthu", "");
  var root = host.attachShadow({ mode: "open" });
  try {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(C.css);
    root.adoptedStyleSheets = [sheet];
  } catch (e) {
    root.appendChild(el("style", null, C.css));
  }
  var launcher = el("button", "launcher");
  launcher.type = "button";
  launcher.setAttribute("aria-label", T.open);
  launcher.appendChild(icon("M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z"));
  var badge = el("span", "badge");
  badge.hidden = true;
  launcher.appendChild(badge);
  var panel = el("section", "panel");
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", C.name);
  var head = el("header");
  var titles = el("div", "titles");
  titles.appendChild(el("div", "title", C.name));
  var status = el("div", "status", T.offline);
  titles.appendChild(status);
  var closer = el("button", "close", "×");
  closer.type = "button";
  closer.setAttribute("aria-label", T.close);
  head.appendChild(titles);
  head.appendChild(closer);
  var list = el("div", "messages");
  list.setAttribute("role", "log");
  list.setAttribute("aria-live", "polite");
  var typing = el("div", "typing", T.typing);
  typing.hidden = true;
  var notice = el("div", "notice");
  notice.hidden = true;
  var form = buildForm();
  var composer = el("form", "composer");
  var attach = el("button", "attach");
  attach.appendChild(icon("M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V6.5H9v9a3 3 0 0 0 6 0V5a4.5 4.5 0 0 0-9 0v11.5a6 6 0 0 0 12 0v-10z"));
  attach.type = "button";
  attach.setAttribute("aria-label", T.attach);
  attach.title = T.attach;
  var file = el("input");
  file.type = "file";
  file.accept = "image/png,image/jpeg,image/gif,image/webp";
  file.hidden = true;
  var input = el("textarea");
  input.rows = 1;
  input.placeholder = T.placeholder;
  input.setAttribute("aria-label", T.placeholder);
  input.maxLength = 2000;
  var sendBtn = el("button", "send", T.send);
  sendBtn.type = "submit";
  composer.appendChild(attach);
  composer.appendChild(file);
  composer.appendChild(input);
  composer.appendChild(sendBtn);
  panel.appendChild(head);
  panel.appendChild(list);
  panel.appendChild(typing);
  panel.appendChild(notice);
  panel.appendChild(form);
  panel.appendChild(composer);
  var wrap = el("div", "root");
  wrap.appendChild(panel);
  wrap.appendChild(launcher);
  root.appendChild(wrap);
  document.body.appendChild(host);

  function buildForm() {
    var f = el("form", "prechat");
    f.hidden = true;
    f.appendChild(el("p", null, T.formIntro));
    [["name", "text", "name"], ["phone", "tel", "tel"], ["email", "email", "email"]].forEach(function (d) {
      var label = el("label", null, T[d[0]]);
      var i = el("input");
      i.name = d[0];
      i.type = d[1];
      i.autocomplete = d[2];
      label.appendChild(i);
      f.appendChild(label);
    });
    var c = el("label", "consent");
    var box = el("input");
    box.type = "checkbox";
    box.name = "consent";
    c.appendChild(box);
    c.appendChild(el("span", null, T.consent));
    f.appendChild(c);
    f.appendChild(el("div", "form-error"));
    var row = el("div", "row");
    var skip = el("button", "skip", T.skip);
    skip.type = "button";
    var ok = el("button", "save", T.save);
    ok.type = "submit";
    row.appendChild(skip);
    row.appendChild(ok);
    f.appendChild(row);
    skip.onclick = function () { save("prechat", "skipped"); f.hidden = true; };
    f.onsubmit = function (ev) {
      ev.preventDefault();
      var e = f.elements;
      send({ type: "prechat", data: { name: e.name.value, phone: e.phone.value, email: e.email.value, consent: e.consent.checked } });
    };
    return f;
  }

  /* ---- state ---- */
  var ws = null, ready = false, lastSeq = null, retry = 0, prechatDone = false;
  var byId = {}, byEcho = {}, pending = [], unread = 0, typingTimer = null, myTyping = false, idleTimer = null, lastRead = 0;

  function setOpen(open) {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", open ? "true" : "false");
    save("open", open ? "1" : null);
    if (open) {
      unread = 0;
      badge.hidden = true;
      markRead();
      showForm();
      setTimeout(function () { input.focus(); }, 0);
      list.scrollTop = list.scrollHeight;
    }
  }
  function showForm() {
    form.hidden = !(C.prechat && !prechatDone && !load("prechat"));
  }
  function flash(text) {
    notice.textContent = text;
    notice.hidden = !text;
    if (text) setTimeout(function () { if (notice.textContent === text) notice.hidden = true; }, 6000);
  }

  function render(m) {
    var node = (m.id != null && byId[m.id]) || (m.echo_id && byEcho[m.echo_id]);
    var fresh = !node;
    var mine = m.direction === "in";
    var next = el("div", "msg " + (mine ? "me" : "them"));
    if (m.removed) {
      next.appendChild(el("div", "text removed", T.removed));
    } else {
      if (m.text) next.appendChild(el("div", "text", m.text));
      (m.attachments || []).forEach(function (a) {
        var src = a.local || absolute(a.url);
        if (a.kind === "image" && src) {
          var img = el("img");
          img.alt = T.image;
          img.src = src;
          img.loading = "lazy";
          next.appendChild(img);
        } else {
          next.appendChild(el("div", "text attachment", "[" + (a.name || a.kind || "file") + "]"));
        }
      });
    }
    var meta = el("div", "meta");
    if (m.state === "pending") meta.textContent = T.sending;
    else if (m.state === "failed" || m.failed) meta.textContent = m.error || T.failed;
    else if (m.created_at) {
      var d = new Date(m.created_at);
      if (!isNaN(d)) meta.textContent = ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
    }
    if (meta.textContent) next.appendChild(meta);
    if (m.state === "failed") {
      var again = el("button", "retry", T.retry);
      again.type = "button";
      again.onclick = function () { m.state = "pending"; render(m); pending.push(m); flush(); };
      next.appendChild(again);
      next.className += " failed";
    }
    if (m.id != null) next.setAttribute("data-id", m.id);
    if (node) list.replaceChild(next, node);
    else list.appendChild(next);
    if (m.id != null) byId[m.id] = next;
    if (m.echo_id) byEcho[m.echo_id] = next;
    if (fresh) list.scrollTop = list.scrollHeight;
    if (fresh && !mine && m.id != null) {
      if (panel.hidden) { unread += 1; badge.textContent = String(unread); badge.hidden = false; }
      else markRead();
    }
  }

  function clearList() {
    byId = {};
    byEcho = {};
    while (list.firstChild) list.removeChild(list.firstChild);
    if (C.greeting || T.greeting) list.appendChild(el("div", "msg them greeting", C.greeting || T.greeting));
  }

  /* ---- socket ---- */
  function send(frame) {
    if (ws && ready && ws.readyState === 1) { ws.send(JSON.stringify(frame)); return true; }
    return false;
  }
  function connect() {
    ready = false;
    ws = new W.WebSocket(base.replace(/^http/, "ws") + "/widget/" + encodeURIComponent(C.token) + "/ws");
    ws.binaryType = "arraybuffer";
    ws.onopen = function () {
      ws.send(JSON.stringify({ type: "hello", data: {
        visitor_token: load("visitor"), since: lastSeq,
        identifier: S.identifier || null, identifier_hash: S.identifierHash || S.identifier_hash || null
      } }));
    };
    ws.onmessage = function (ev) {
      var f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      handle(f);
    };
    ws.onclose = function () {
      ready = false;
      status.textContent = T.offline;
      retry = Math.min(retry + 1, 6);
      setTimeout(connect, Math.min(15000, 500 * Math.pow(2, retry - 1)) * (0.5 + Math.random() / 2));
    };
  }
  function handle(f) {
    var d = f.data || {};
    if (f.type === "welcome") {
      save("visitor", d.visitor_token);
      prechatDone = !!d.prechat_done;
      if (d.messages) {
        clearList();
        d.messages.forEach(render);
        pending.forEach(render);
      }
      lastSeq = f.seq;
      showForm();
    } else if (f.type === "ready") {
      ready = true;
      retry = 0;
      status.textContent = T.online;
      flush();
    } else if (f.type === "message.created" || f.type === "message.updated") {
      lastSeq = f.seq;
      if (d.echo_id) dropPending(d.echo_id);
      render(d);
      if (d.direction === "out") { typing.hidden = true; }
    } else if (f.type === "message.accepted") {
      dropPending(d.echo_id);
    } else if (f.type === "typing") {
      lastSeq = f.seq;
      typing.hidden = !d.on;
      clearTimeout(typingTimer);
      if (d.on) typingTimer = setTimeout(function () { typing.hidden = true; }, 30000);
    } else if (f.type === "prechat.saved") {
      prechatDone = true;
      form.hidden = true;
      flash(T.saved);
    } else if (f.type === "error") {
      if (d.code === "invalid_prechat") {
        form.querySelector(".form-error").textContent = d.message || "";
      } else if (d.echo_id) {
        var m = findPending(d.echo_id);
        if (m && d.code !== "storage_unavailable") {
          dropPending(d.echo_id);
          m.state = "failed";
          m.error = d.message;
          render(m);
        }
      } else if (d.message) flash(d.message);
    } else if (f.type === "resync") {
      lastSeq = null;
    }
  }
  function findPending(echo) {
    for (var i = 0; i < pending.length; i++) if (pending[i].echo_id === echo) return pending[i];
    return null;
  }
  function dropPending(echo) {
    pending = pending.filter(function (m) { return m.echo_id !== echo; });
  }
  function flush() {
    pending.forEach(function (m) {
      if (!ready) return;
      if (m.blob) {
        m.blob.arrayBuffer().then(function (bytes) {
          var head = new TextEncoder().encode(JSON.stringify({ echo_id: m.echo_id, text: m.text || null }));
          var buf = new Uint8Array(4 + head.length + bytes.byteLength);
          new DataView(buf.buffer).setUint32(0, head.length);
          buf.set(head, 4);
          buf.set(new Uint8Array(bytes), 4 + head.length);
          if (ws && ready) ws.send(buf.buffer);
        });
      } else {
        send({ type: "message", data: { echo_id: m.echo_id, text: m.text } });
      }
    });
  }
  function queue(m) {
    m.echo_id = newId();
    m.direction = "in";
    m.state = "pending";
    pending.push(m);
    render(m);
    flush();
  }
  function markRead() {
    var now = Date.now();
    if (now - lastRead > 2000 && send({ type: "read", data: {} })) lastRead = now;
  }
  function stopTyping() {
    if (myTyping) { myTyping = false; send({ type: "typing", data: { on: false } }); }
  }

  /* ---- events ---- */
  launcher.onclick = function () { setOpen(panel.hidden); };
  closer.onclick = function () { setOpen(false); };
  panel.addEventListener("keydown", function (ev) { if (ev.key === "Escape") setOpen(false); });
  composer.onsubmit = function (ev) {
    ev.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    stopTyping();
    queue({ text: text });
  };
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); composer.requestSubmit ? composer.requestSubmit() : composer.onsubmit(ev); }
  });
  input.addEventListener("input", function () {
    if (!myTyping && input.value.trim()) { myTyping = true; send({ type: "typing", data: { on: true } }); }
    clearTimeout(idleTimer);
    idleTimer = setTimeout(stopTyping, 3000);
  });
  attach.onclick = function () { file.click(); };
  file.onchange = function () {
    var f = file.files && file.files[0];
    file.value = "";
    if (!f) return;
    if (!/^image\/(png|jpeg|gif|webp)$/.test(f.type)) { flash(T.badType); return; }
    if (f.size > C.maxImage) { flash(T.tooBig.replace("{n}", Math.floor(C.maxImage / 1048576))); return; }
    queue({ blob: f, attachments: [{ kind: "image", local: W.URL.createObjectURL(f) }] });
  };

  clearList();
  W.__hopthu[C.token] = { open: function () { setOpen(true); }, close: function () { setOpen(false); } };
  if (load("open")) setOpen(true);
  connect();
})(__HOPTHU_CONFIG__);
