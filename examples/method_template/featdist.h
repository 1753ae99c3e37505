/* featdist.h — the template method's descriptor (featdist.c), registered by main.c. */
#ifndef FEATDIST_H
#define FEATDIST_H
#include "methods/method.h"
extern const vg_method_def featdist_method;
#endif
