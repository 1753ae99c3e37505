/* reproduce.h — `vigil reproduce`: the papers' tables from declarative specs
 * (scripts/tables/<table>.json), each cell a run directory, aggregated next to the paper.
 *
 * A spec names the method, the rows (categories / settings), the columns (configurations)
 * and the metrics, and the paper's numbers per (row, column) as an array in metric order.
 * A cell is (row config + column config, dataset, category, seed): its run directory is
 * OUT/runs/<method>/<dataset>-<category>/<12 hex of SHA-256 of the canonical cell text>-s<seed>,
 * so identical configurations are one run shared by every row and table that needs them
 * (FastFlow's WRN50 column of Table 2 is Table 5's "3-1" row, Table 7's "1.0x", ...).
 * Cells are enumerated in a fixed order (columns, rows, categories, seeds; first occurrence
 * wins), so `--cell N` can address one later.
 *
 * Beyond one process (issue #24): `--cells` lists them (index, done/todo, estimated s, device,
 * run dir); `--cell N` runs exactly that one (exit 2 out of range; no aggregation); `--jobs N`
 * runs N at a time in forked children (with --device cuda and several GPUs, one GPU each via
 * CUDA_VISIBLE_DEVICES); `--slurm` writes OUT/slurm/TABLE/job.sbatch (an array over the
 * unfinished cells, `--cell $SLURM_ARRAY_TASK_ID`; cells past index 999 in job-<k>.sbatch, as
 * Slurm's default MaxArraySize is 1001) and aggregate.sbatch (--aggregate, afterany on the
 * arrays), and `--submit` submits them. Every cell runs under an flock on "<run dir>.lock"
 * (a second process asking for the same cell waits, then finds it done), the smoke data under
 * OUT/synth.lock; `vigil train`'s own vigil.lock keeps two trainings out of one run directory.
 *
 * Aggregation (vg_repro_aggregate): per seed, a row's value is the mean over its categories
 * (or over the rows it averages); ours = the mean over the seeds whose cells are all done,
 * σ = the SAMPLE standard deviation (n - 1) over those seeds (0 with one seed, shown as
 * "(1 run)"); a row with no complete seed is "missing k/n cells". The split into a parser
 * and an aggregator over plain values is what tests/test_reproduce.c checks. */
#ifndef VG_CLI_REPRODUCE_H
#define VG_CLI_REPRODUCE_H
#include <stdbool.h>
#include <stdint.h>
#include "base/json.h"
#include "base/status.h"

/* mean and sample σ of v[0..n) (σ = 0 when n < 2); false when n == 0 */
bool vg_repro_mean_std(const double *v, int n, double *mean, double *std);
/* A metric value from a metrics.json document: path "image_auroc" (under "mean"), or a dotted
 * path under "mean" with array indices ("loco.au_spro.logical.3"); false when absent or null. */
bool vg_repro_metric(const vg_json *metrics, const char *path, double *out);

/* The parsed spec, checked: VG_ERR_FORMAT "SPEC: rows[3].paper.r18: want N numbers ..." */
typedef struct vg_repro_spec vg_repro_spec;
vg_status vg_repro_spec_parse(const char *name, const char *text, size_t len, vg_repro_spec **out);
void vg_repro_spec_free(vg_repro_spec *s);
/* how many cells the table has for runs seeds (smoke: the synthetic mapping) */
int vg_repro_spec_cells(const vg_repro_spec *s, int runs, bool smoke);
/* the paper value of (row id, column id, metric key): false when the paper has none */
bool vg_repro_spec_paper(const vg_repro_spec *s, const char *row, const char *col, const char *metric, double *out);

/* the command (cli/main.c's table and dispatch) */
#include "cli/opts.h"
extern const vg_cmd_spec vg_cmd_reproduce;
int vg_cli_reproduce(int argc, char **argv);
#endif
