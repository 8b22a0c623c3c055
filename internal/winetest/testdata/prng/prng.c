/*
 * bcryptprimitives.dll for wine 8.0, which has none: programs built with
 * Go 1.24 and later get their random numbers from
 * bcryptprimitives.dll!ProcessPrng (Windows 10 and later) and throw
 * "bcryptprimitives.dll not found" at start without it. This stand-in
 * exports ProcessPrng on top of advapi32!SystemFunction036 (RtlGenRandom),
 * which wine has. Built by the wine tests with Debian's mingw-w64 and put
 * in the test prefix's system32 (Go loads it from there only).
 */
#include <windows.h>

typedef BOOLEAN (WINAPI *rtlgenrandom_t)(PVOID, ULONG);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    static rtlgenrandom_t gen;
    if (!gen) {
        HMODULE h = LoadLibraryA("advapi32.dll");
        if (!h) return FALSE;
        gen = (rtlgenrandom_t)GetProcAddress(h, "SystemFunction036");
        if (!gen) return FALSE;
    }
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!gen(data, n)) return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
