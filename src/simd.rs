//! Hot loops compiled twice: for the baseline x86-64 the release build targets, and for AVX2,
//! chosen at run time. Both compile the same body and Rust never contracts `a * b + c` into an FMA,
//! so the two give bit-identical results (each use has a test that checks it).

/// `avx2_dispatch! { VIS fn NAME(ARGS) -> RET = BODY; }` defines `NAME`, which runs `BODY` (an
/// `#[inline(always)]` function with the same arguments) compiled for AVX2 where the CPU has it,
/// and the baseline build elsewhere.
macro_rules! avx2_dispatch {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? = $body:path;) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2 (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

/// Whether this CPU runs the AVX2 builds (the bit-identity tests say which pair they compared).
#[cfg(test)]
pub fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
