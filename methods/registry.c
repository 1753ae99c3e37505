/* registry.c — method name -> descriptor (methods/method.h). A new method adds one VG_METHOD line;
 * a program outside the tree adds its own with vg_method_register. */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include "nn/checkpoint.h"
#include "methods/method.h"

/* The registered methods, one line each: VG_METHOD(NAME) names the descriptor
 * `vg_method_NAME` its folder methods/NAME/ defines (methods/method.h). */
#define VG_METHOD_LIST \
  VG_METHOD(fastflow) \
  VG_METHOD(cflow) \
  VG_METHOD(efficientad) \
  VG_METHOD(stfpm) \
  VG_METHOD(patchcore) \
  VG_METHOD(padim) \
  VG_METHOD(meanimage)

#define VG_METHOD(n) extern const vg_method_def vg_method_##n;
VG_METHOD_LIST
#undef VG_METHOD
#define VG_METHOD(n) &vg_method_##n,
static const vg_method_def *const vg_builtin_methods[] = { VG_METHOD_LIST NULL };
#define VG_NBUILTIN (sizeof vg_builtin_methods / sizeof vg_builtin_methods[0] - 1)
/* the built-in methods, then those vg_method_register added (appended under vg_reg_mu; the
 * array only grows and its NULL terminator moves right, so readers need no lock) */
static const vg_method_def *vg_methods[VG_NBUILTIN + VG_METHOD_MAX_REGISTERED + 1] = { VG_METHOD_LIST NULL };
#undef VG_METHOD
#define VG_NMETHODS (sizeof vg_methods / sizeof vg_methods[0] - 1)
static size_t vg_nregistered;
static pthread_mutex_t vg_reg_mu = PTHREAD_MUTEX_INITIALIZER;

vg_status vg_method_register(const vg_method_def *d) {
  if (!d) return vg_fail(VG_ERR_ARG, "vg_method_register: NULL descriptor");
  if (!d->name || !d->name[0]) return vg_fail(VG_ERR_ARG, "vg_method_register: the descriptor has no name (vg_method_def.name)");
  const char *nm = d->name;
  size_t len = strlen(nm);
  bool name_ok = len <= 64 && (isalnum((unsigned char)nm[0]) || nm[0] == '_');
  for (size_t i = 0; i < len && name_ok; i++)
    name_ok = isalnum((unsigned char)nm[i]) || nm[i] == '_' || nm[i] == '-' || nm[i] == '.';
  if (!name_ok)
    return vg_fail(VG_ERR_ARG, "vg_method_register: bad method name '%.80s' (1 to 64 letters, digits, '_', '-', '.', not "
                   "starting with '-' or '.': it is a command-line argument and the config's \"method\")", nm);
  if (!d->create) return vg_fail(VG_ERR_ARG, "vg_method_register: method '%s' has no constructor (vg_method_def.create)", nm);
  if (!d->config)
    return vg_fail(VG_ERR_ARG, "vg_method_register: method '%s' has no config field table (vg_method_def.config; a method "
                   "without keys gives an empty table, {{NULL}})", nm);
  if (d->summary && strchr(d->summary, '\n'))
    return vg_fail(VG_ERR_ARG, "vg_method_register: method '%s': the summary is one line (it has a newline)", nm);
  if (!vg_cfg_table_ok(nm, d->config)) return vg_fail_prefix("vg_method_register");
  if (d->quick.steps < 0 || (d->quick.steps > 0 && d->quick.batch < 1))
    return vg_fail(VG_ERR_ARG, "vg_method_register: method '%s': quick schedule of %lld steps of batch %d (steps 0 = none, "
                   "else steps > 0 and batch >= 1)", nm, (long long)d->quick.steps, d->quick.batch);
  if (!d->anomalib_infer != !d->anomalib_load)
    return vg_fail(VG_ERR_ARG, "vg_method_register: method '%s': anomalib_infer and anomalib_load go together (both or "
                   "neither)", nm);
  pthread_mutex_lock(&vg_reg_mu);
  vg_status st = VG_OK;
  for (size_t i = 0; vg_methods[i] && st == VG_OK; i++)
    if (vg_methods[i] == d || !strcmp(vg_methods[i]->name, nm))
      st = vg_fail(VG_ERR_ARG, "vg_method_register: a method named '%s' is already registered (%s)", nm,
                   i < VG_NBUILTIN ? "built in" : vg_methods[i] == d ? "this descriptor, earlier" : "by an earlier call");
  if (st == VG_OK && vg_nregistered == VG_METHOD_MAX_REGISTERED)
    st = vg_fail(VG_ERR_ARG, "vg_method_register: method '%s': the registry is full (%d registered methods)", nm,
                 VG_METHOD_MAX_REGISTERED);
  if (st == VG_OK) vg_methods[VG_NBUILTIN + vg_nregistered++] = d;
  pthread_mutex_unlock(&vg_reg_mu);
  return st;
}

const vg_method_def *const *vg_method_defs(void) { return vg_methods; }

const vg_method_def *vg_method_find(const char *name) {
  for (size_t i = 0; name && vg_methods[i]; i++)
    if (!strcmp(vg_methods[i]->name, name)) return vg_methods[i];
  return NULL;
}

const char *const *vg_method_names(void) {
  static const char *names[VG_NMETHODS + 1];
  size_t i = 0;
  for (; vg_methods[i]; i++) names[i] = vg_methods[i]->name;
  names[i] = NULL;
  return names;
}

const char *vg_method_list(char *buf, size_t cap, const char *sep, bool anomalib_only) {
  size_t n = 0, total = 0, k = 0;
  for (size_t i = 0; vg_methods[i]; i++) total += !anomalib_only || vg_methods[i]->anomalib_load;
  if (cap) buf[0] = 0;
  for (size_t i = 0; vg_methods[i] && cap; i++) {
    if (anomalib_only && !vg_methods[i]->anomalib_load) continue;
    const char *s = k == 0 ? "" : (k + 1 == total && !strcmp(sep, ", ")) ? " or " : sep;
    int w = snprintf(buf + n, cap - n, "%s%s", s, vg_methods[i]->name);
    if (w < 0 || (size_t)w >= cap - n) break;
    n += (size_t)w;
    k++;
  }
  return buf;
}

vg_status vg_method_create(const char *name, const vg_json *cfg, vg_method **out) {
  *out = NULL;
  const vg_method_def *d = vg_method_find(name);
  if (d) {
    vg_status st = d->create(cfg, out);
    if (st == VG_OK && !*out) return vg_fail(VG_ERR_ARG, "method '%s': create() returned VG_OK and no method", d->name);
    if (st != VG_OK) { *out = NULL; return st; }
    /* the ops every driver calls unconditionally (the others may be NULL: method.h) */
    const vg_method_ops *o = (*out)->ops;
    const vg_method *m = *out;
    const char *miss = !o ? "ops" : !o->name ? "ops->name" : !o->train_step ? "ops->train_step" : !o->predict ? "ops->predict"
                       : !o->save ? "ops->save" : !o->load ? "ops->load" : !o->config_json ? "ops->config_json"
                       : !o->free ? "ops->free" : NULL;
    if (!miss && (m->input_h < 1 || m->input_w < 1 || m->train_channels < 1 || m->train_batch < 1 || !m->train_transform ||
                  !m->test_transform))
      miss = "input_h / input_w / train_channels / train_batch (>= 1) or train_transform / test_transform";
    if (miss) {
      if (o && o->free) o->free(*out);   /* without a free op the method cannot be freed: it leaks */
      *out = NULL;
      return vg_fail(VG_ERR_ARG, "method '%s': create() returned a method without %s (methods/method.h)", d->name, miss);
    }
    return VG_OK;
  }
  char known[1024];
  return vg_fail(VG_ERR_ARG, "unknown method '%s' (known: %s)", name ? name : "(null)",
                 vg_method_list(known, sizeof known, ", ", false));
}

bool vg_method_quick_schedule(const char *name, vg_method_quick *out) {
  const vg_method_def *d = vg_method_find(name);
  if (!d || d->quick.steps <= 0) return false;
  *out = d->quick;
  return true;
}

bool vg_method_print_config_help(FILE *out, const char *name) {
  const vg_method_def *d = vg_method_find(name);
  if (!d) return false;
  if (d->summary) fprintf(out, "%s: %s\n", d->name, d->summary);
  vg_cfg_print_help(out, d->name, d->config);
  return true;
}

void vg_method_free(vg_method *m) {
  if (m && m->ops && m->ops->free) m->ops->free(m);
}

vg_status vg_method_checkpoint_save(const vg_method *m, const vg_nn_module *net, vg_optim *opt, const char *path) {
  char *cfg = m->ops->config_json(m);
  vg_status st = vg_nn_checkpoint_save_state(path, net, opt, cfg ? cfg : "{}", m->run_state);
  free(cfg);
  return st;
}

vg_status vg_method_to(vg_method *m, vg_device dev, vg_dtype dt) {
  const char *name = m->ops->name;
  if (dt != VG_F32 && dt != VG_F16) return vg_fail(VG_ERR_ARG, "%s: dtype %s is not supported (f32 or f16)", name, vg_dtype_name(dt));
  if (dt == VG_F16 && dev == VG_CPU)
    return vg_fail(VG_ERR_ARG, "%s: f16 computes on the GPU only (--device cuda), the CPU computes in f32", name);
  if (dev == m->device && dt == m->dtype) return VG_OK;
  if (dev != VG_CPU && !vg_cuda_available()) return vg_fail_prefix("%s: --device cuda", name);
  if (!m->ops->to)
    return vg_fail(VG_ERR_ARG, "%s: this method runs on the CPU in f32 only (no device support)", name);
  vg_status st = m->ops->to(m, dev, dt);
  if (st != VG_OK) return vg_fail_prefix("%s: moving to %s/%s", name, dev == VG_CPU ? "cpu" : "cuda", vg_dtype_name(dt));
  m->device = dev;
  m->dtype = dt;
  return VG_OK;
}

const vg_tensor *vg_method_input(const vg_method *m, const vg_tensor *x) {
  if (!x) return NULL;
  if (x->device != m->device) x = vg_to_device(x, m->device);
  if (x && x->dtype != m->dtype) x = vg_cast(x, m->dtype);
  return x;
}

bool vg_parse_device(const char *s, vg_device *dev) {
  if (!s || !strcmp(s, "cpu")) *dev = VG_CPU;
  else if (!strcmp(s, "cuda") || !strcmp(s, "gpu")) *dev = VG_CUDA;
  else {
    vg_fail(VG_ERR_ARG, "unknown device '%s' (cpu or cuda)", s);
    return false;
  }
  return true;
}

bool vg_parse_dtype(const char *s, vg_dtype *dt) {
  if (!s || !strcmp(s, "f32") || !strcmp(s, "float32") || !strcmp(s, "fp32")) *dt = VG_F32;
  else if (!strcmp(s, "f16") || !strcmp(s, "float16") || !strcmp(s, "fp16") || !strcmp(s, "half")) *dt = VG_F16;
  else {
    vg_fail(VG_ERR_ARG, "unknown dtype '%s' (f32 or f16)", s);
    return false;
  }
  return true;
}

vg_status vg_method_maps_out(const vg_tensor *map, float *maps, float *scores) {
  if (!map) return vg_last_status() != VG_OK ? vg_last_status() : vg_fail(VG_ERR_ARG, "predict: no map");
  vg_status st = vg_to_host(map, VG_F32, maps);   /* any device / dtype */
  int64_t n = map->shape[0], P = vg_numel(map) / (n ? n : 1);
  for (int64_t r = 0; st == VG_OK && r < n; r++) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < P; i++) mx = maps[r * P + i] > mx ? maps[r * P + i] : mx;
    scores[r] = mx;
  }
  return st;
}

vg_status vg_method_move(vg_nn_module *net, vg_optim *opt, int nhost, vg_tensor *const *host, vg_device dev,
                         vg_dtype dt) {
  vg_status st = vg_nn_to(net, dev, dt);
  for (int i = 0; i < nhost && st == VG_OK; i++) st = vg_tensor_to_(host[i], VG_CPU, host[i]->dtype);
  if (st == VG_OK && opt && dt == VG_F32) st = vg_optim_to(opt, dev);
  return st;
}

vg_status vg_method_check_memory(const char *method, const char *keys, double trained, double frozen,
                                 double act_floats) {
  double need = 16.0 * trained + 4.0 * frozen + 4.0 * act_floats;
  const char *what;
  double lim = vg_memory_limit(&what);
  if (lim <= 0 || need <= lim) return VG_OK;
  return vg_fail(VG_ERR_ARG, "%s: config %s needs about %.1f GiB (%.0fM trained + %.0fM frozen parameters, %.1f GiB of "
                 "activations per image), more than the %.1f GiB of %s: use smaller values", method, keys,
                 need / 1073741824.0, trained / 1e6, frozen / 1e6, 4.0 * act_floats / 1073741824.0, lim / 1073741824.0,
                 what);
}

double vg_memory_limit(const char **what) {
  double lim = 0;
  long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
  if (pages > 0 && psz > 0) lim = (double)pages * (double)psz;
  *what = "the machine's memory";
  struct rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (lim <= 0 || (double)rl.rlim_cur < lim)) {
    lim = (double)rl.rlim_cur;
    *what = "the process's address-space limit (ulimit -v)";
  }
  return lim;
}
