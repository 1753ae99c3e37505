/* module.c — the module tree: registration, dotted names, modes, freezing, free. */
#include "nn/nn.h"
#include "autograd/autograd.h"
#include <string.h>

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (!d) VG_ABORT("out of memory");
  memcpy(d, s, n);
  return d;
}

static void *grow(void *p, int n, size_t elem) {
  p = realloc(p, (size_t)(n + 1) * elem);
  if (!p) VG_ABORT("out of memory");
  return p;
}

vg_nn_module *vg_nn_module_new(const char *kind_name, vg_nn_forward_fn forward, void *ctx,
                               void (*free_ctx)(void *ctx)) {
  vg_nn_module *m = calloc(1, sizeof *m);
  if (!m) VG_ABORT("out of memory");
  m->kind = VG_NN_CUSTOM;
  m->kind_name = dup_str(kind_name ? kind_name : "Module");
  m->training = true;
  m->forward = forward;
  m->ctx = ctx;
  m->free_ctx = free_ctx;
  return m;
}

static bool name_taken(const vg_nn_module *m, const char *name) {
  for (int i = 0; i < m->nparams; i++) if (!strcmp(m->params[i].name, name)) return true;
  for (int i = 0; i < m->nbuffers; i++) if (!strcmp(m->buffers[i].name, name)) return true;
  for (int i = 0; i < m->nchildren; i++) if (!strcmp(m->children[i].name, name)) return true;
  return false;
}

static void check_new_name(const vg_nn_module *m, const char *name) {
  VG_ASSERT(name && *name && !strchr(name, '.') && "module entry names are non-empty and have no dots");
  if (name_taken(m, name)) VG_ABORT("%s: name \"%s\" registered twice", m->kind_name, name);
}

void vg_nn_add_param(vg_nn_module *m, const char *name, vg_tensor *t) {
  check_new_name(m, name);
  VG_ASSERT(t && (t->flags & VG_TF_HEAP) && "parameters are heap tensors (vg_tensor_new)");
  vg_requires_grad_(t, true);
  m->params = grow(m->params, m->nparams, sizeof *m->params);
  m->params[m->nparams++] = (vg_nn_entry){dup_str(name), t};
}

void vg_nn_add_buffer(vg_nn_module *m, const char *name, vg_tensor *t) {
  check_new_name(m, name);
  VG_ASSERT(t && (t->flags & VG_TF_HEAP) && "buffers are heap tensors (vg_tensor_new)");
  m->buffers = grow(m->buffers, m->nbuffers, sizeof *m->buffers);
  m->buffers[m->nbuffers++] = (vg_nn_entry){dup_str(name), t};
}

void vg_nn_add_child(vg_nn_module *m, const char *name, vg_nn_module *child) {
  check_new_name(m, name);
  VG_ASSERT(child && child != m);
  m->children = grow(m->children, m->nchildren, sizeof *m->children);
  m->children[m->nchildren++] = (vg_nn_child){dup_str(name), child};
}

vg_tensor *vg_nn_param(const vg_nn_module *m, const char *name) {
  for (int i = 0; i < m->nparams; i++) if (!strcmp(m->params[i].name, name)) return m->params[i].t;
  return NULL;
}

vg_tensor *vg_nn_buffer(const vg_nn_module *m, const char *name) {
  for (int i = 0; i < m->nbuffers; i++) if (!strcmp(m->buffers[i].name, name)) return m->buffers[i].t;
  return NULL;
}

vg_nn_module *vg_nn_child_get(const vg_nn_module *m, const char *name) {
  for (int i = 0; i < m->nchildren; i++) if (!strcmp(m->children[i].name, name)) return m->children[i].m;
  return NULL;
}

vg_tensor *vg_nn_get(const vg_nn_module *m, const char *dotted) {
  for (;;) {
    const char *dot = strchr(dotted, '.');
    if (!dot) {
      vg_tensor *t = vg_nn_param(m, dotted);
      return t ? t : vg_nn_buffer(m, dotted);
    }
    size_t len = (size_t)(dot - dotted);
    const vg_nn_module *next = NULL;
    for (int i = 0; i < m->nchildren && !next; i++)
      if (strlen(m->children[i].name) == len && !memcmp(m->children[i].name, dotted, len)) next = m->children[i].m;
    if (!next) return NULL;
    m = next;
    dotted = dot + 1;
  }
}

void vg_nn_train(vg_nn_module *m, bool on) {
  m->training = on;
  for (int i = 0; i < m->nchildren; i++) vg_nn_train(m->children[i].m, on);
}

void vg_nn_requires_grad(vg_nn_module *m, bool on) {
  for (int i = 0; i < m->nparams; i++) vg_requires_grad_(m->params[i].t, on);
  for (int i = 0; i < m->nchildren; i++) vg_nn_requires_grad(m->children[i].m, on);
}

void vg_nn_zero_grad(vg_nn_module *m) {
  for (int i = 0; i < m->nparams; i++) vg_zero_grad_(m->params[i].t);
  for (int i = 0; i < m->nchildren; i++) vg_nn_zero_grad(m->children[i].m);
}

vg_status vg_nn_to(vg_nn_module *m, vg_device dev, vg_dtype float_dt) {
  if (float_dt != VG_F32 && float_dt != VG_F16 && float_dt != VG_BF16)
    return vg_fail(VG_ERR_ARG, "nn_to: %s is not a float dtype", vg_dtype_name(float_dt));
  vg_nn_list l = vg_nn_state_dict(m);
  vg_status st = VG_OK;
  for (int i = 0; i < l.n && st == VG_OK; i++) {
    vg_tensor *t = l.tensors[i];
    bool fl = t->dtype == VG_F32 || t->dtype == VG_F16 || t->dtype == VG_BF16;
    st = vg_tensor_to_(t, dev, fl ? float_dt : t->dtype);
    if (st != VG_OK) vg_fail_prefix("nn_to: %s", l.names[i]);
  }
  vg_nn_list_free(&l);
  return st;
}

int64_t vg_nn_num_params(const vg_nn_module *m, bool trainable_only) {
  int64_t n = 0;
  for (int i = 0; i < m->nparams; i++)
    if (!trainable_only || m->params[i].t->requires_grad) n += vg_numel(m->params[i].t);
  for (int i = 0; i < m->nchildren; i++) n += vg_nn_num_params(m->children[i].m, trainable_only);
  return n;
}

static bool any_param_grad(const vg_nn_module *m) {
  for (int i = 0; i < m->nparams; i++)
    if (m->params[i].t->requires_grad) return true;
  for (int i = 0; i < m->nchildren; i++)
    if (any_param_grad(m->children[i].m)) return true;
  return false;
}

bool vg_nn_would_record(const vg_nn_module *m, int nx, const vg_tensor *const *xs) {
  if (!vg_grad_enabled()) return false;
  for (int i = 0; i < nx; i++)
    if (xs[i] && xs[i]->requires_grad) return true;
  return m && any_param_grad(m);
}

void vg_nn_conv_cache(vg_nn_module *m, bool on) {
  if (!m) return;
  if (m->kind == VG_NN_CONV2D) {
    if (on && !m->u.conv.o.pack) m->u.conv.o.pack = vg_conv_pack_new();
    if (!on) {
      vg_conv_pack_free(m->u.conv.o.pack);
      m->u.conv.o.pack = NULL;
    }
  }
  for (int i = 0; i < m->nchildren; i++) vg_nn_conv_cache(m->children[i].m, on);
}

size_t vg_nn_conv_cache_bytes(const vg_nn_module *m) {
  if (!m) return 0;
  size_t n = m->kind == VG_NN_CONV2D ? vg_conv_pack_bytes(m->u.conv.o.pack) : 0;
  for (int i = 0; i < m->nchildren; i++) n += vg_nn_conv_cache_bytes(m->children[i].m);
  return n;
}

void vg_nn_free(vg_nn_module *m) {
  if (!m) return;
  if (m->kind == VG_NN_CONV2D) vg_conv_pack_free(m->u.conv.o.pack);
  for (int i = 0; i < m->nparams; i++) {
    vg_tensor_free(m->params[i].t);
    free(m->params[i].name);
  }
  for (int i = 0; i < m->nbuffers; i++) {
    vg_tensor_free(m->buffers[i].t);
    free(m->buffers[i].name);
  }
  for (int i = 0; i < m->nchildren; i++) {
    vg_nn_free(m->children[i].m);
    free(m->children[i].name);
  }
  if (m->free_ctx) m->free_ctx(m->ctx);
  free(m->params);
  free(m->buffers);
  free(m->children);
  free(m->kind_name);
  free(m);
}

/* ---- named iteration (torch's state_dict order: own params, own buffers, children) */
static void list_push(vg_nn_list *l, const char *prefix, const char *name, vg_tensor *t, bool buf) {
  l->names = grow(l->names, l->n, sizeof *l->names);
  l->tensors = grow(l->tensors, l->n, sizeof *l->tensors);
  l->is_buffer = grow(l->is_buffer, l->n, sizeof *l->is_buffer);
  size_t a = strlen(prefix), b = strlen(name);
  char *s = malloc(a + b + 1);
  if (!s) VG_ABORT("out of memory");
  memcpy(s, prefix, a);
  memcpy(s + a, name, b + 1);
  l->names[l->n] = s;
  l->tensors[l->n] = t;
  l->is_buffer[l->n] = buf;
  l->n++;
}

static void collect(const vg_nn_module *m, const char *prefix, bool params, bool buffers, vg_nn_list *l) {
  if (params)
    for (int i = 0; i < m->nparams; i++) list_push(l, prefix, m->params[i].name, m->params[i].t, false);
  if (buffers)
    for (int i = 0; i < m->nbuffers; i++) list_push(l, prefix, m->buffers[i].name, m->buffers[i].t, true);
  for (int i = 0; i < m->nchildren; i++) {
    size_t a = strlen(prefix), b = strlen(m->children[i].name);
    char *p = malloc(a + b + 2);
    if (!p) VG_ABORT("out of memory");
    memcpy(p, prefix, a);
    memcpy(p + a, m->children[i].name, b);
    p[a + b] = '.';
    p[a + b + 1] = 0;
    collect(m->children[i].m, p, params, buffers, l);
    free(p);
  }
}

vg_nn_list vg_nn_named_parameters(const vg_nn_module *m) {
  vg_nn_list l = {0};
  collect(m, "", true, false, &l);
  return l;
}

vg_nn_list vg_nn_named_buffers(const vg_nn_module *m) {
  vg_nn_list l = {0};
  collect(m, "", false, true, &l);
  return l;
}

vg_nn_list vg_nn_state_dict(const vg_nn_module *m) {
  vg_nn_list l = {0};
  collect(m, "", true, true, &l);
  return l;
}

void vg_nn_list_free(vg_nn_list *l) {
  for (int i = 0; i < l->n; i++) free(l->names[i]);
  free(l->names);
  free(l->tensors);
  free(l->is_buffer);
  *l = (vg_nn_list){0};
}
