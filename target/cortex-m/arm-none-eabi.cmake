# arm-none-eabi.cmake - CMake toolchain file for Cortex-M3 firmware with
# Debian's gcc-arm-none-eabi and libnewlib-arm-none-eabi.
#
#   cmake -DCMAKE_TOOLCHAIN_FILE=target/cortex-m/arm-none-eabi.cmake ...
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)

set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
set(CMAKE_AR arm-none-eabi-ar)
set(CMAKE_RANLIB arm-none-eabi-ranlib)
set(CMAKE_SIZE arm-none-eabi-size)
set(CMAKE_OBJCOPY arm-none-eabi-objcopy)

# Compiler checks link a program; a bare-metal one has no startup code.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(CS_CPU_FLAGS "-mcpu=cortex-m3 -mthumb -mfloat-abi=soft")
set(CMAKE_C_FLAGS_INIT
  "${CS_CPU_FLAGS} -ffunction-sections -fdata-sections -ffreestanding")
set(CMAKE_ASM_FLAGS_INIT "${CS_CPU_FLAGS}")
set(CMAKE_EXE_LINKER_FLAGS_INIT
  "${CS_CPU_FLAGS} -nostartfiles -Wl,--gc-sections --specs=nano.specs")
set(CMAKE_C_FLAGS_MINSIZEREL_INIT "-Os")

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
