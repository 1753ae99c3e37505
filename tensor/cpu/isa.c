#include "tensor/cpu/isa.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cur = -1;

vg_isa vg_cpu_isa_max(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
    return VG_ISA_AVX512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return VG_ISA_AVX2;
#endif
  return VG_ISA_SCALAR;
}

vg_isa vg_cpu_isa(void) {
  if (cur < 0) {
    vg_isa best = vg_cpu_isa_max(), want = best;
    const char *e = getenv("VIGIL_ISA");
    if (e && !strcmp(e, "scalar")) want = VG_ISA_SCALAR;
    else if (e && !strcmp(e, "avx2")) want = VG_ISA_AVX2;
    else if (e && !strcmp(e, "avx512")) want = VG_ISA_AVX512;
    else if (e && *e)
      fprintf(stderr, "vigil: warning: VIGIL_ISA='%s' is not one of scalar, avx2, avx512; using %s (the best this CPU has)\n",
              e, vg_isa_name(best));
    if (want > best)
      fprintf(stderr, "vigil: warning: VIGIL_ISA=%s: this CPU lacks %s; using %s (the best it has)\n", e, e,
              vg_isa_name(best));
    cur = want < best ? want : best;
  }
  return (vg_isa)cur;
}

void vg_cpu_set_isa(vg_isa isa) {
  vg_isa best = vg_cpu_isa_max();
  cur = isa < best ? isa : best;
}

const char *vg_isa_name(vg_isa isa) {
  switch (isa) {
    case VG_ISA_SCALAR: return "scalar";
    case VG_ISA_AVX2: return "avx2";
    case VG_ISA_AVX512: return "avx512";
  }
  return "?";
}

void vg_cpu_switch_set(vg_cpu_switch *s, int on) { atomic_store(&s->set, on < 0 ? -1 : on != 0); }

int vg_cpu_switch_on(vg_cpu_switch *s) {
  const int set = atomic_load(&s->set);
  if (set >= 0) return set;
  int e = atomic_load(&s->env);
  if (e < 0) {
    const char *v = getenv(s->var);
    e = !(v && (!strcmp(v, "0") || !strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no")));
    atomic_store(&s->env, e);
  }
  return e;
}
