/* hd.h — VG_HD marks small inline functions shared by the CPU code and the CUDA kernels
 * (__host__ __device__ under nvcc; plain C elsewhere, the host emulator included). */
#ifndef VG_HD_H
#define VG_HD_H
#ifdef __CUDACC__
#define VG_HD __host__ __device__
#else
#define VG_HD
#endif
#endif
