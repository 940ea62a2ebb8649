// The static fjord-unit-shim binary, embedded as bytes (spawn.cc writes it to a memfd and
// execs it). FJORD_SHIM_PATH is set by CMake to the built binary.
#define FJORD_STR2(x) #x
#define FJORD_STR(x) FJORD_STR2(x)

__asm__(".section .rodata\n"
        ".global fjord_unit_shim_start\n"
        ".global fjord_unit_shim_end\n"
        ".balign 16\n"
        "fjord_unit_shim_start:\n"
        ".incbin \"" FJORD_STR(FJORD_SHIM_PATH) "\"\n"
        "fjord_unit_shim_end:\n"
        ".byte 0\n"
        ".previous\n");
