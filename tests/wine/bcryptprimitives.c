/*
 * bcryptprimitives.dll for Wine 8, which lacks it: only ProcessPrng, the one
 * function the Rust standard library imports from it (for HashMap keys and
 * getrandom), over BCryptGenRandom, which Wine has. Test-only: real Windows
 * (10 and later) ships this DLL, and nothing built by olreg contains it.
 */
#include <windows.h>
#include <bcrypt.h>

/* Like Windows' own: fills the whole buffer and always succeeds (a failing
 * system random source is not something a caller could recover from). */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;

		if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
			FatalAppExitA(0, "ProcessPrng: BCryptGenRandom failed");
		data += n;
		len -= n;
	}
	return TRUE;
}
