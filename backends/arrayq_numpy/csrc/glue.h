/* Declarations shared by the Python glue files of arrayq_numpy._kernels (module.c, bound.c):
 * these need Python.h, so they are kept apart from kernels.h. */
#ifndef ARRAYQ_GLUE_H
#define ARRAYQ_GLUE_H

#include <Python.h>

#include "kernels.h"

#pragma GCC visibility push(hidden)

/* the repacked layout of a format at a level into L; NULL with ValueError set for a bad
 * format, n < 0 or sizes that overflow (module.c) */
const struct level *layout_of(const struct level *lv, long long n, long long k, int group_size, int bits,
                              int scale_kind, int symmetric, struct rq_layout *L);
/* adds the bound-call types (bound.c) to the module; -1 with an error set */
int add_bound_types(PyObject *module);
/* bound_clock(mode): see bound.c */
PyObject *py_bound_clock(PyObject *module, PyObject *arg);

#pragma GCC visibility pop

#endif
