/* graph.c — FrEIA's GraphINN (framework/graph_inn.py) and the multi-port flow dispatch
 * (vg_flow_forward_multi / vg_flow_output_dims_multi, flows.h).
 *
 * A graph is a list of nodes (InputNode, ConditionNode, OutputNode, or a node holding a
 * flow module) whose inputs are (node, output) ports. vg_flow_graph_build checks the DAG
 * (ports exist, each output feeds exactly one input, no cycle, conditions are
 * ConditionNodes, shapes and condition channels agree), orders it as FrEIA does and
 * registers the modules as "module_list.<i>" in that order. Running it keeps one tensor per
 * output port: forward, node k writes its outputs' ports and reads its producers'; rev,
 * node k writes its producers' ports and reads its own (which its consumers wrote), so the
 * same table serves both directions. */
#include "flows/block.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { GN_MODULE, GN_INPUT, GN_COND, GN_OUTPUT } gnode_kind;
static const char *const KIND_NAME[] = {"node", "InputNode", "ConditionNode", "OutputNode"};

typedef struct {
  char *name;
  gnode_kind kind;
  vg_nn_module *module;     /* GN_MODULE; owned by the node until build registers it */
  bool owned;
  int nin, nout;
  vg_flow_port *in;         /* nin producers */
  int ncond;
  int *cond;                /* ncond ConditionNode ids */
  vg_flow_dims dims;        /* InputNode / ConditionNode dims */
  vg_flow_dims *odims;      /* nout inferred output dims */
  int role;                 /* index among the inputs / conditions / outputs */
  int st;                   /* inference: 0 new, 1 visiting, 2 done */
  int base;                 /* first output port's slot in the value table */
} gnode;

typedef struct {
  vg_flow_block b;          /* built: dims of InputNode 0; nin / nout: the graph's ports */
  int n, cap;
  gnode *nodes;
  bool built;
  int nins, nconds, nouts;
  int *ins, *conds, *outs;  /* node ids by role, in the order they were added */
  int *order, norder;       /* forward execution order (FrEIA's node_list) */
  int *mods, nmod;          /* module_list index -> node id */
  int nslots;
} graph_state;

static void graph_free(void *p) {
  graph_state *f = p;
  for (int i = 0; i < f->n; i++) {
    gnode *g = &f->nodes[i];
    if (g->owned) vg_nn_free(g->module);
    free(g->name); free(g->in); free(g->cond); free(g->odims);
  }
  free(f->nodes); free(f->ins); free(f->conds); free(f->outs); free(f->order); free(f->mods);
}

static int graph_fwd_multi(vg_nn_module *m, int nx, vg_tensor *const *x, int ncond, vg_tensor *const *cond, bool rev,
                           bool want, vg_tensor **y, vg_tensor **logdet);
static int graph_dims_multi(const vg_nn_module *m, int nin, const vg_flow_dims *in, vg_flow_dims *out);

static vg_tensor *graph_fwd(vg_nn_module *m, const vg_tensor *x, int ncond, vg_tensor *const *cond, bool rev, bool want,
                            vg_tensor **logdet) {
  graph_state *f = m->ctx;
  if (logdet) *logdet = NULL;
  if (f->built && (f->nins != 1 || f->nouts != 1)) {
    vg_fail(VG_ERR_ARG, "GraphINN has %d inputs and %d outputs: run it with vg_flow_forward_multi", f->nins, f->nouts);
    return NULL;
  }
  vg_tensor *y = NULL, *ld = NULL, *xs[1] = {(vg_tensor *)x};
  if (vg_flow_forward_multi(m, 1, xs, ncond, cond, rev, want, &y, &ld) < 0) return NULL;
  if (logdet) *logdet = want ? ld : NULL;
  return y;
}

static int graph_dims(const vg_nn_module *m, int ndim, const int64_t *dims, int64_t *out) {
  const graph_state *f = m->ctx;
  if (!f->built) { vg_fail(VG_ERR_ARG, "GraphINN: not built (vg_flow_graph_build)"); return -1; }
  if (f->nins != 1 || f->nouts != 1) { vg_fail(VG_ERR_ARG, "GraphINN has %d inputs and %d outputs: use vg_flow_output_dims_multi", f->nins, f->nouts); return -1; }
  vg_flow_dims in = {ndim, {0}}, o;
  for (int i = 0; i < ndim && i < 4; i++) in.d[i] = dims[i];
  if (graph_dims_multi(m, 1, &in, &o) < 0) return -1;
  for (int i = 0; i < o.ndim; i++) out[i] = o.d[i];
  return o.ndim;
}

static const vg_flow_block_ops graph_ops = {.forward = graph_fwd, .output_dims = graph_dims, .free_state = graph_free,
    .composite = true, .forward_multi = graph_fwd_multi, .output_dims_multi = graph_dims_multi};

static graph_state *gstate(const vg_nn_module *g) { return vg_flow_block_state(g, &graph_ops); }

/* ------------------------------------------------------------------ small helpers */
static void dims_str(char *buf, size_t cap, const vg_flow_dims *d) {
  size_t k = (size_t)snprintf(buf, cap, "(");
  for (int i = 0; i < d->ndim && k < cap; i++) k += (size_t)snprintf(buf + k, cap - k, i ? ", %lld" : "%lld", (long long)d->d[i]);
  if (k < cap) snprintf(buf + k, cap - k, ")");
}

static bool dims_eq(const vg_flow_dims *a, const vg_flow_dims *b) {
  if (a->ndim != b->ndim) return false;
  for (int i = 0; i < a->ndim; i++) if (a->d[i] != b->d[i]) return false;
  return true;
}

static vg_flow_dims tensor_dims(const vg_tensor *t) {
  vg_flow_dims d = {t->ndim - 1, {0}};
  for (int i = 1; i < t->ndim && i <= 4; i++) d.d[i - 1] = t->shape[i];
  return d;
}

/* ------------------------------------------------------------------ multi-port dispatch */
int vg_flow_num_inputs(const vg_nn_module *m) {
  if (!vg_flow_is_flow(m)) return -1;
  const vg_flow_block *b = vg_flow_block_of(m);
  return b->ops->forward_multi ? b->nin : 1;
}
int vg_flow_num_outputs(const vg_nn_module *m) {
  if (!vg_flow_is_flow(m)) return -1;
  const vg_flow_block *b = vg_flow_block_of(m);
  return b->ops->forward_multi ? b->nout : 1;
}

int vg_flow_forward_multi(vg_nn_module *m, int nx, vg_tensor *const *xs, int ncond, vg_tensor *const *cond, bool rev,
                          bool want, vg_tensor **ys, vg_tensor **logdet) {
  if (logdet) *logdet = NULL;
  if (!vg_flow_is_flow(m)) { vg_fail(VG_ERR_ARG, "vg_flow_forward_multi: not a flow module"); return -1; }
  const vg_flow_block *b = vg_flow_block_of(m);
  if (b->ops == &graph_ops && !((const graph_state *)m->ctx)->built) {
    vg_fail(VG_ERR_ARG, "GraphINN: not built (vg_flow_graph_build)");
    return -1;
  }
  int want_n = rev ? vg_flow_num_outputs(m) : vg_flow_num_inputs(m);
  if (nx != want_n) {
    vg_fail(VG_ERR_ARG, "%s takes %d %s, got %d", m->kind_name, want_n, rev ? "tensors in reverse (its outputs)" : "inputs", nx);
    return -1;
  }
  for (int i = 0; i < nx; i++) if (!xs[i]) { vg_fail(VG_ERR_ARG, "%s: input %d is NULL", m->kind_name, i); return -1; }
  if (!b->ops->forward_multi) {
    vg_tensor *ld = NULL;
    ys[0] = vg_flow_forward(m, xs[0], ncond, cond, rev, want, &ld);
    if (!ys[0]) return -1;
    if (logdet) *logdet = want ? ld : NULL;
    return 1;
  }
  vg_tensor *ld = NULL;
  int n = b->ops->forward_multi(m, nx, xs, ncond, cond, rev, want, ys, &ld);
  if (n < 0) return -1;
  if (want && !ld) ld = vg_flow_zeros_n(xs[0], xs[0]->shape[0]);
  if (logdet) *logdet = want ? ld : NULL;
  return n;
}

int vg_flow_output_dims_multi(const vg_nn_module *m, int nin, const vg_flow_dims *in, vg_flow_dims *out) {
  if (!vg_flow_is_flow(m)) { vg_fail(VG_ERR_ARG, "not a flow module"); return -1; }
  const vg_flow_block *b = vg_flow_block_of(m);
  if (b->ops->output_dims_multi) return b->ops->output_dims_multi(m, nin, in, out);
  if (nin != 1) { vg_fail(VG_ERR_ARG, "%s takes 1 input, got %d", m->kind_name, nin); return -1; }
  int nd = vg_flow_output_dims(m, in[0].ndim, in[0].d, out[0].d);
  if (nd < 0) return -1;
  out[0].ndim = nd;
  return 1;
}

/* ------------------------------------------------------------------ building */
vg_nn_module *vg_flow_graph_new(void) {
  vg_nn_module *m = vg_flow_block_new("GraphINN", &graph_ops, sizeof(graph_state), 0, NULL, 0);
  return m;
}

/* a new node (its module already checked); -1 + error when g is not an unbuilt graph */
static int add_node(vg_nn_module *g, const char *name, gnode_kind kind, vg_nn_module *module, int nin,
                    const vg_flow_port *in, int ncond, const int *cond) {
  graph_state *f = gstate(g);
  if (!f || f->built) {
    vg_nn_free(module);
    vg_fail(VG_ERR_ARG, f ? "GraphINN: already built, cannot add node '%s'" : "vg_flow_graph_*: not a GraphINN (node '%s')",
            name ? name : "?");
    return -1;
  }
  if (nin < 0 || ncond < 0 || (nin && !in) || (ncond && !cond)) {
    vg_nn_free(module);
    vg_fail(VG_ERR_ARG, "GraphINN: node '%s': bad input / condition lists", name ? name : "?");
    return -1;
  }
  if (f->n == f->cap) {
    f->cap = f->cap ? 2 * f->cap : 8;
    f->nodes = realloc(f->nodes, sizeof *f->nodes * (size_t)f->cap);
  }
  int id = f->n++;
  gnode *nd = &f->nodes[id];
  memset(nd, 0, sizeof *nd);
  char def[32];
  snprintf(def, sizeof def, "node%d", id);
  const char *nm = name && *name ? name : def;
  nd->name = malloc(strlen(nm) + 1);
  strcpy(nd->name, nm);
  nd->kind = kind;
  nd->module = module;
  nd->owned = module != NULL;
  nd->nin = nin;
  nd->in = malloc(sizeof *nd->in * (size_t)(nin ? nin : 1));
  if (nin) memcpy(nd->in, in, sizeof *nd->in * (size_t)nin);
  nd->ncond = ncond;
  nd->cond = malloc(sizeof *nd->cond * (size_t)(ncond ? ncond : 1));
  if (ncond) memcpy(nd->cond, cond, sizeof *nd->cond * (size_t)ncond);
  nd->nout = kind == GN_OUTPUT ? 0 : kind == GN_MODULE ? vg_flow_num_outputs(module) : 1;
  nd->odims = calloc((size_t)(nd->nout ? nd->nout : 1), sizeof *nd->odims);
  return id;
}

static bool check_source_dims(const char *what, const char *name, int ndim, const int64_t *dims) {
  if (ndim < 1 || ndim > 4 || !dims) { vg_fail(VG_ERR_ARG, "GraphINN: %s '%s': dims must have 1 to 4 entries", what, name ? name : "?"); return false; }
  for (int i = 0; i < ndim; i++) if (dims[i] <= 0) { vg_fail(VG_ERR_ARG, "GraphINN: %s '%s': dims must be > 0", what, name ? name : "?"); return false; }
  return true;
}

static int add_source(vg_nn_module *g, const char *name, gnode_kind kind, int ndim, const int64_t *dims) {
  if (!check_source_dims(KIND_NAME[kind], name, ndim, dims)) return -1;
  int id = add_node(g, name, kind, NULL, 0, NULL, 0, NULL);
  if (id < 0) return -1;
  gnode *nd = &gstate(g)->nodes[id];
  nd->dims.ndim = ndim;
  for (int i = 0; i < ndim; i++) nd->dims.d[i] = dims[i];
  return id;
}

int vg_flow_graph_input(vg_nn_module *g, const char *name, int ndim, const int64_t *dims) {
  return add_source(g, name, GN_INPUT, ndim, dims);
}
int vg_flow_graph_condition(vg_nn_module *g, const char *name, int ndim, const int64_t *dims) {
  return add_source(g, name, GN_COND, ndim, dims);
}
int vg_flow_graph_output(vg_nn_module *g, const char *name, vg_flow_port in) {
  return add_node(g, name, GN_OUTPUT, NULL, 1, &in, 0, NULL);
}

int vg_flow_graph_node(vg_nn_module *g, const char *name, vg_nn_module *module, int nin, const vg_flow_port *in,
                       int ncond, const int *cond_nodes) {
  if (!module) {
    vg_fail_prefix("GraphINN: node '%s': no module", name ? name : "?");
    return -1;
  }
  if (!vg_flow_is_flow(module)) {
    vg_fail(VG_ERR_ARG, "GraphINN: node '%s': %s is not a flow module", name ? name : "?", module->kind_name);
    vg_nn_free(module);
    return -1;
  }
  if (nin != vg_flow_num_inputs(module)) {
    vg_fail(VG_ERR_ARG, "GraphINN: node '%s': its %s takes %d inputs, %d given", name ? name : "?", module->kind_name,
            vg_flow_num_inputs(module), nin);
    vg_nn_free(module);
    return -1;
  }
  return add_node(g, name, GN_MODULE, module, nin, in, ncond, cond_nodes);
}

int vg_flow_graph_find(const vg_nn_module *g, const char *name) {
  const graph_state *f = gstate(g);
  for (int i = 0; f && name && i < f->n; i++) if (!strcmp(f->nodes[i].name, name)) return i;
  return -1;
}
vg_nn_module *vg_flow_graph_module(const vg_nn_module *g, int node) {
  const graph_state *f = gstate(g);
  return f && node >= 0 && node < f->n ? f->nodes[node].module : NULL;
}
int vg_flow_graph_module_node(const vg_nn_module *g, int i) {
  const graph_state *f = gstate(g);
  return f && f->built && i >= 0 && i < f->nmod ? f->mods[i] : -1;
}

/* port p names an existing node's output; who: the consumer, for the message */
static bool port_ok(const graph_state *f, vg_flow_port p, const gnode *who, const char *role, int k) {
  if (p.node < 0 || p.node >= f->n) {
    vg_fail(VG_ERR_ARG, "GraphINN: %s '%s' %s %d refers to node %d, which does not exist (%d nodes)", KIND_NAME[who->kind],
            who->name, role, k, p.node, f->n);
    return false;
  }
  const gnode *s = &f->nodes[p.node];
  if (p.out < 0 || p.out >= s->nout) {
    vg_fail(VG_ERR_ARG, "GraphINN: %s '%s' %s %d wants output %d of '%s', which has %d output%s", KIND_NAME[who->kind],
            who->name, role, k, p.out, s->name, s->nout, s->nout == 1 ? "" : "s");
    return false;
  }
  return true;
}

/* the conditions of node id: ConditionNodes whose dims suit the node's module */
static bool conds_ok(graph_state *f, const gnode *nd) {
  int64_t cc = 0;
  for (int k = 0; k < nd->ncond; k++) {
    int c = nd->cond[k];
    if (c < 0 || c >= f->n || f->nodes[c].kind != GN_COND) {
      vg_fail(VG_ERR_ARG, "GraphINN: node '%s' condition %d: %s is not a ConditionNode", nd->name, k,
              c < 0 || c >= f->n ? "the node id" : f->nodes[c].name);
      return false;
    }
    cc += f->nodes[c].dims.d[0];
  }
  if (nd->kind != GN_MODULE) return true;
  const vg_flow_block *b = vg_flow_block_of(nd->module);
  if (b->ops == &graph_ops || !strcmp(nd->module->kind_name, "SequenceINN")) return true;   /* they check at run time */
  if (!b->ops->uses_cond) {
    if (nd->ncond) {
      vg_fail(VG_ERR_ARG, "GraphINN: node '%s' (%s) takes no condition, but %d given (first '%s')", nd->name,
              nd->module->kind_name, nd->ncond, f->nodes[nd->cond[0]].name);
      return false;
    }
    return true;
  }
  if (b->cond_ch > 0 && nd->ncond == 0) {
    vg_fail(VG_ERR_ARG, "GraphINN: node '%s' (%s) is built for %lld condition channels but has no condition (missing condition)",
            nd->name, nd->module->kind_name, (long long)b->cond_ch);
    return false;
  }
  if (cc != b->cond_ch) {
    vg_fail(VG_ERR_ARG, "GraphINN: node '%s' (%s) is built for %lld condition channels, its conditions ('%s'%s) have %lld",
            nd->name, nd->module->kind_name, (long long)b->cond_ch, f->nodes[nd->cond[0]].name, nd->ncond > 1 ? ", ..." : "",
            (long long)cc);
    return false;
  }
  /* spatial dims as the node's input */
  const vg_flow_dims *x = nd->nin ? &f->nodes[nd->in[0].node].odims[nd->in[0].out] : NULL;
  for (int k = 0; x && k < nd->ncond; k++) {
    const vg_flow_dims *c = &f->nodes[nd->cond[k]].dims;
    bool ok = c->ndim == x->ndim;
    for (int i = 1; ok && i < x->ndim; i++) ok = c->d[i] == x->d[i];
    if (!ok) {
      char a[96], s[96];
      dims_str(a, sizeof a, c);
      dims_str(s, sizeof s, x);
      vg_fail(VG_ERR_ARG, "GraphINN: node '%s': condition '%s' has dims %s, its input %s: the spatial dims must agree",
              nd->name, f->nodes[nd->cond[k]].name, a, s);
      return false;
    }
  }
  return true;
}

static int infer_module(graph_state *f, gnode *nd, const vg_flow_dims *in);

/* infers node id's output dims (and its producers'), checking shapes; -1 + error */
static int infer(graph_state *f, int id) {
  gnode *nd = &f->nodes[id];
  if (nd->st == 2) return 0;
  if (nd->st == 1) {
    vg_fail(VG_ERR_ARG, "GraphINN: the graph is cyclic: node '%s' depends on its own output", nd->name);
    return -1;
  }
  nd->st = 1;
  if (nd->kind == GN_INPUT || nd->kind == GN_COND) {
    nd->odims[0] = nd->dims;
    nd->st = 2;
    return 0;
  }
  for (int k = 0; k < nd->nin; k++)
    if (!port_ok(f, nd->in[k], nd, "input", k) || infer(f, nd->in[k].node) < 0) return -1;
  vg_flow_dims *in = malloc(sizeof *in * (size_t)(nd->nin > 0 ? nd->nin : 1));
  for (int k = 0; k < nd->nin; k++) in[k] = f->nodes[nd->in[k].node].odims[nd->in[k].out];
  int rc = infer_module(f, nd, in);
  free(in);
  if (rc < 0) return -1;
  nd->st = 2;
  return 0;
}

/* node nd's module for input dims in: built dims, output dims, conditions */
static int infer_module(graph_state *f, gnode *nd, const vg_flow_dims *in) {
  if (nd->kind == GN_MODULE) {
    const vg_flow_block *b = vg_flow_block_of(nd->module);
    if (!b->ops->forward_multi && !b->ops->composite) {     /* a block built for one input shape */
      vg_flow_dims built = {b->ndim, {b->dims[0], b->dims[1], b->dims[2], b->dims[3]}};
      if (!dims_eq(&built, &in[0])) {
        char a[96], s[96];
        dims_str(a, sizeof a, &in[0]);
        dims_str(s, sizeof s, &built);
        vg_fail(VG_ERR_ARG, "GraphINN: shape mismatch: node '%s' gets dims %s from '%s' output %d, but its %s was built for %s",
                nd->name, a, f->nodes[nd->in[0].node].name, nd->in[0].out, nd->module->kind_name, s);
        return -1;
      }
    }
    if (vg_flow_output_dims_multi(nd->module, nd->nin, in, nd->odims) < 0) {
      char a[160] = "";
      size_t len = 0;
      for (int k = 0; k < nd->nin && len < sizeof a - 1; k++) {
        char s[96];
        dims_str(s, sizeof s, &in[k]);
        len += (size_t)snprintf(a + len, sizeof a - len, "%s'%s'.%d %s", k ? ", " : "", f->nodes[nd->in[k].node].name,
                                nd->in[k].out, s);
      }
      vg_fail_prefix("GraphINN: shape mismatch at node '%s' (inputs %s)", nd->name, a);
      return -1;
    }
    if (!conds_ok(f, nd)) return -1;
  }
  return 0;
}

/* infer from a public entry: dims already inferred stay (nodes never change once added);
 * after an error the nodes left half-visited are reset */
static int infer_top(graph_state *f, int id) {
  if (infer(f, id) == 0) return 0;
  for (int i = 0; i < f->n; i++) if (f->nodes[i].st == 1) f->nodes[i].st = 0;
  return -1;
}

int vg_flow_graph_port_dims(const vg_nn_module *g, vg_flow_port p, vg_flow_dims *out) {
  graph_state *f = gstate(g);
  if (!f) { vg_fail(VG_ERR_ARG, "vg_flow_graph_port_dims: not a GraphINN"); return -1; }
  gnode caller = {.name = "(query)", .kind = GN_MODULE};
  if (!port_ok(f, p, &caller, "port", 0)) return -1;
  if (infer_top(f, p.node) < 0) return -1;
  *out = f->nodes[p.node].odims[p.out];
  return out->ndim;
}

static vg_status build_fail(int *a, int *b, int *c) {
  free(a); free(b); free(c);
  return vg_last_status();
}

vg_status vg_flow_graph_build(vg_nn_module *g) {
  graph_state *f = gstate(g);
  if (!f) return vg_fail(VG_ERR_ARG, "vg_flow_graph_build: not a GraphINN");
  if (f->built) return vg_fail(VG_ERR_ARG, "GraphINN: already built");
  /* roles (a failed build may be retried after adding nodes) */
  free(f->ins); free(f->conds); free(f->outs); free(f->order);
  f->order = NULL;
  f->ins = malloc(sizeof(int) * (size_t)(f->n + 1));
  f->conds = malloc(sizeof(int) * (size_t)(f->n + 1));
  f->outs = malloc(sizeof(int) * (size_t)(f->n + 1));
  f->nins = f->nconds = f->nouts = 0;
  for (int i = 0; i < f->n; i++) {
    gnode *nd = &f->nodes[i];
    if (nd->kind == GN_INPUT) nd->role = f->nins, f->ins[f->nins++] = i;
    if (nd->kind == GN_COND) nd->role = f->nconds, f->conds[f->nconds++] = i;
    if (nd->kind == GN_OUTPUT) nd->role = f->nouts, f->outs[f->nouts++] = i;
  }
  if (!f->nins || !f->nouts) return vg_fail(VG_ERR_ARG, "GraphINN: the graph needs an InputNode and an OutputNode (has %d and %d)", f->nins, f->nouts);
  /* ports exist and are no ConditionNode's; conditions are ConditionNodes */
  for (int i = 0; i < f->n; i++) {
    gnode *nd = &f->nodes[i];
    for (int k = 0; k < nd->nin; k++) {
      if (!port_ok(f, nd->in[k], nd, "input", k)) return vg_last_status();
      if (f->nodes[nd->in[k].node].kind == GN_COND)
        return vg_fail(VG_ERR_ARG, "GraphINN: %s '%s' input %d is ConditionNode '%s': conditions go in the node's condition list",
                       KIND_NAME[nd->kind], nd->name, k, f->nodes[nd->in[k].node].name);
    }
    for (int k = 0; k < nd->ncond; k++)
      if (nd->cond[k] < 0 || nd->cond[k] >= f->n || f->nodes[nd->cond[k]].kind != GN_COND)
        return vg_fail(VG_ERR_ARG, "GraphINN: node '%s' condition %d is not a ConditionNode", nd->name, k);
  }
  /* value slots; each output port's consumer: exactly one */
  f->nslots = 0;
  for (int i = 0; i < f->n; i++) f->nodes[i].base = f->nslots, f->nslots += f->nodes[i].nout;
  int *cons = malloc(sizeof(int) * (size_t)(f->nslots + 1)), *indeg = calloc((size_t)f->n + 1, sizeof(int)),
      *q = malloc(sizeof(int) * (size_t)(f->n + 1));
  for (int k = 0; k < f->nslots; k++) cons[k] = -1;
  for (int i = 0; i < f->n; i++)
    for (int k = 0; k < f->nodes[i].nin; k++) {
      vg_flow_port p = f->nodes[i].in[k];
      int *c = &cons[f->nodes[p.node].base + p.out];
      if (*c >= 0) {
        vg_fail(VG_ERR_ARG, "GraphINN: output %d of %s '%s' feeds both '%s' and '%s' (an output feeds exactly one input)", p.out,
                KIND_NAME[f->nodes[p.node].kind], f->nodes[p.node].name, f->nodes[*c].name, f->nodes[i].name);
        return build_fail(cons, indeg, q);
      }
      *c = i;
    }
  /* cycles: Kahn over every node along producer -> consumer edges */
  int qt = 0;
  for (int i = 0; i < f->n; i++) if (!(indeg[i] = f->nodes[i].nin)) q[qt++] = i;
  for (int qh = 0; qh < qt; qh++) {
    const gnode *nd = &f->nodes[q[qh]];
    for (int o = 0; o < nd->nout; o++) {
      int c = cons[nd->base + o];
      if (c >= 0 && --indeg[c] == 0) q[qt++] = c;
    }
  }
  if (qt < f->n) {
    char names[256] = "";
    size_t len = 0;
    int shown = 0;
    for (int i = 0; i < f->n && len < sizeof names - 1; i++)
      if (indeg[i] && shown < 6) len += (size_t)snprintf(names + len, sizeof names - len, "%s'%s'", shown++ ? ", " : "", f->nodes[i].name);
    vg_fail(VG_ERR_ARG, "GraphINN: the graph is cyclic: nodes %s%s are on or behind a cycle", names, f->n - qt > 6 ? ", ..." : "");
    return build_fail(cons, indeg, q);
  }
  /* no unused output (ConditionNodes may be unused, as FrEIA) */
  for (int i = 0; i < f->n; i++) {
    const gnode *nd = &f->nodes[i];
    for (int o = 0; o < nd->nout && nd->kind != GN_COND; o++)
      if (cons[nd->base + o] < 0) {
        vg_fail(VG_ERR_ARG, "GraphINN: output %d of %s '%s' is not used (every output must feed a node or an OutputNode)", o,
                KIND_NAME[nd->kind], nd->name);
        return build_fail(cons, indeg, q);
      }
  }
  /* shapes and conditions, producers first (q is a topological order) */
  for (int k = 0; k < qt; k++)
    if (infer_top(f, q[k]) < 0) return build_fail(cons, indeg, q);
  /* FrEIA's order: Kahn from the OutputNodes along consumer -> producer edges (a node is
   * queued once all its distinct consumers are), producers in the order of each node's
   * inputs; reversed. Every non-condition node is reached (no unused outputs, no cycle). */
  int *pending = indeg;
  memset(pending, 0, sizeof(int) * (size_t)f->n);
  for (int i = 0; i < f->n; i++)
    for (int k = 0; k < f->nodes[i].nin; k++) {
      int s = f->nodes[i].in[k].node;
      bool dup = false;
      for (int j = 0; j < k; j++) dup |= f->nodes[i].in[j].node == s;
      if (!dup) pending[s]++;
    }
  qt = 0;
  for (int k = 0; k < f->nouts; k++) q[qt++] = f->outs[k];
  for (int qh = 0; qh < qt; qh++) {
    const gnode *nd = &f->nodes[q[qh]];
    for (int k = 0; k < nd->nin; k++) {
      int s = nd->in[k].node;
      bool dup = false;
      for (int j = 0; j < k; j++) dup |= nd->in[j].node == s;
      if (!dup && --pending[s] == 0) q[qt++] = s;
    }
  }
  f->order = malloc(sizeof(int) * (size_t)(qt ? qt : 1));
  f->norder = qt;
  for (int k = 0; k < qt; k++) f->order[k] = q[qt - 1 - k];
  build_fail(cons, indeg, q);
  /* module_list */
  vg_nn_module *ml = vg_nn_module_new("ModuleList", NULL, NULL, NULL);
  free(f->mods);
  f->mods = malloc(sizeof(int) * (size_t)(f->norder ? f->norder : 1));
  f->nmod = 0;
  for (int k = 0; k < f->norder; k++) {
    gnode *nd = &f->nodes[f->order[k]];
    if (nd->kind != GN_MODULE) continue;
    char name[32];
    snprintf(name, sizeof name, "%d", f->nmod);
    vg_nn_add_child(ml, name, nd->module);
    nd->owned = false;
    f->mods[f->nmod++] = f->order[k];
  }
  vg_nn_add_child(g, "module_list", ml);
  const gnode *in0 = &f->nodes[f->ins[0]];
  f->b.ndim = in0->dims.ndim;
  for (int i = 0; i < 4; i++) f->b.dims[i] = in0->dims.d[i];
  f->b.nin = f->nins;
  f->b.nout = f->nouts;
  f->built = true;
  return VG_OK;
}

/* ------------------------------------------------------------------ running */
static int graph_dims_multi(const vg_nn_module *m, int nin, const vg_flow_dims *in, vg_flow_dims *out) {
  const graph_state *f = m->ctx;
  if (!f->built) { vg_fail(VG_ERR_ARG, "GraphINN: not built (vg_flow_graph_build)"); return -1; }
  if (nin != f->nins) { vg_fail(VG_ERR_ARG, "GraphINN: takes %d inputs, got %d", f->nins, nin); return -1; }
  for (int k = 0; k < nin; k++) {
    const gnode *nd = &f->nodes[f->ins[k]];
    if (!dims_eq(&in[k], &nd->dims)) {
      char a[96], s[96];
      dims_str(a, sizeof a, &in[k]);
      dims_str(s, sizeof s, &nd->dims);
      vg_fail(VG_ERR_ARG, "GraphINN: InputNode '%s' has dims %s, got %s", nd->name, s, a);
      return -1;
    }
  }
  for (int k = 0; k < f->nouts; k++) {
    const vg_flow_port p = f->nodes[f->outs[k]].in[0];
    out[k] = f->nodes[p.node].odims[p.out];
  }
  return f->nouts;
}

static int slot(const graph_state *f, vg_flow_port p) { return f->nodes[p.node].base + p.out; }

static int graph_fwd_multi(vg_nn_module *m, int nx, vg_tensor *const *x, int ncond, vg_tensor *const *cond, bool rev,
                           bool want, vg_tensor **y, vg_tensor **logdet) {
  graph_state *f = m->ctx;
  if (!f->built) { vg_fail(VG_ERR_ARG, "GraphINN: not built (vg_flow_graph_build)"); return -1; }
  if (ncond != f->nconds) { vg_fail(VG_ERR_ARG, "GraphINN: got %d conditions, but expected %d", ncond, f->nconds); return -1; }
  /* the given tensors have the dims of the InputNodes (rev: of what the OutputNodes take) */
  for (int k = 0; k < nx; k++) {
    const gnode *nd = &f->nodes[rev ? f->outs[k] : f->ins[k]];
    const vg_flow_dims *want_d = rev ? &f->nodes[nd->in[0].node].odims[nd->in[0].out] : &nd->dims;
    vg_flow_dims got = tensor_dims(x[k]);
    if (x[k]->shape[0] != x[0]->shape[0] || !dims_eq(&got, want_d)) {
      char a[96], s[96];
      dims_str(a, sizeof a, &got);
      dims_str(s, sizeof s, want_d);
      vg_fail(VG_ERR_ARG, "GraphINN: %s '%s' takes dims %s (batch %lld), got %s (batch %lld)", KIND_NAME[nd->kind], nd->name, s,
              (long long)x[0]->shape[0], a, (long long)x[k]->shape[0]);
      return -1;
    }
  }
  for (int k = 0; k < ncond; k++) {
    const gnode *nd = &f->nodes[f->conds[k]];
    vg_flow_dims got = cond[k] ? tensor_dims(cond[k]) : (vg_flow_dims){0, {0}};
    if (!cond[k] || cond[k]->shape[0] != x[0]->shape[0] || !dims_eq(&got, &nd->dims)) {
      char a[96], s[96];
      dims_str(a, sizeof a, &got);
      dims_str(s, sizeof s, &nd->dims);
      vg_fail(VG_ERR_ARG, "GraphINN: ConditionNode '%s' takes dims %s, got %s", nd->name, s, a);
      return -1;
    }
  }
  vg_tensor **val = calloc((size_t)(f->nslots ? f->nslots : 1), sizeof *val);
  int maxp = 1;
  for (int i = 0; i < f->n; i++) {
    if (f->nodes[i].nin > maxp) maxp = f->nodes[i].nin;
    if (f->nodes[i].nout > maxp) maxp = f->nodes[i].nout;
    if (f->nodes[i].ncond > maxp) maxp = f->nodes[i].ncond;
  }
  vg_tensor **a = malloc(sizeof *a * (size_t)maxp), **b = malloc(sizeof *b * (size_t)maxp),
            **cs = malloc(sizeof *cs * (size_t)maxp);
  for (int k = 0; k < f->nconds; k++) val[f->nodes[f->conds[k]].base] = cond[k];
  for (int k = 0; k < nx; k++) {
    if (rev) val[slot(f, f->nodes[f->outs[k]].in[0])] = x[k];
    else val[f->nodes[f->ins[k]].base] = x[k];
  }
  vg_tensor *ld = NULL;
  int rc = 0;
  for (int s = 0; s < f->norder && rc == 0; s++) {
    const gnode *nd = &f->nodes[f->order[rev ? f->norder - 1 - s : s]];
    if (nd->kind != GN_MODULE) continue;
    int na = rev ? nd->nout : nd->nin;
    for (int k = 0; k < na; k++) a[k] = rev ? val[nd->base + k] : val[slot(f, nd->in[k])];
    for (int k = 0; k < nd->ncond; k++) cs[k] = val[f->nodes[nd->cond[k]].base];
    vg_tensor *j = NULL;
    int nb = vg_flow_forward_multi(nd->module, na, a, nd->ncond, cs, rev, want, b, &j);
    if (nb < 0) {
      vg_fail_prefix("GraphINN: node '%s' (%s)%s", nd->name, nd->module->kind_name, rev ? " in reverse" : "");
      rc = -1;
      break;
    }
    for (int k = 0; k < nb; k++) {
      if (rev) val[slot(f, nd->in[k])] = b[k];
      else val[nd->base + k] = b[k];
    }
    if (want) ld = vg_flow_add_ld(ld, j);
  }
  if (rc == 0) {
    int ny = rev ? f->nins : f->nouts;
    for (int k = 0; k < ny; k++) y[k] = rev ? val[f->nodes[f->ins[k]].base] : val[slot(f, f->nodes[f->outs[k]].in[0])];
    if (want) *logdet = ld ? ld : vg_flow_zeros_n(x[0], x[0]->shape[0]);
    rc = ny;
  }
  free(val); free(a); free(b); free(cs);
  return rc;
}
