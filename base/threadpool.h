/* threadpool.h — the CPU backend's pthreads pool (tensor/cpu/threadpool.c). Its API is
 * public in tensor/parallel.h (code outside tensor/ includes that one). */
#ifndef VG_THREADPOOL_H
#define VG_THREADPOOL_H
#include "tensor/parallel.h"
#endif
