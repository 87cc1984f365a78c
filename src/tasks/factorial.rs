//! `hab.factorial(n)`: a CPU-bound task returning the number of decimal digits of `n!`.
//!
//! `n!` is computed exactly with num-bigint by Luschny's prime-swing recursion (21 ms for
//! 100000! here, against 30 ms for a balanced product tree of the packed factors, which is
//! kept as a reference and in the benches); its digit count is derived
//! from the bit length and one power of ten, never from a decimal conversion (which for
//! 100000! — 456,574 digits — would cost far more than the product itself).

use num_bigint::BigUint;

/// Registered task name.
pub const NAME: &str = "hab.factorial";

/// `n!` by multiplying 1, 2, …, n one after another (the baseline for the bench: each
/// step multiplies a growing number by a word, quadratic overall).
pub fn factorial_naive(n: u64) -> BigUint {
    let mut acc = BigUint::from(1u32);
    for i in 2..=n {
        acc *= i;
    }
    acc
}

/// `n!` by a product tree: the factors are packed into machine words (as many as fit in a
/// `u64`), then the words are multiplied as a balanced binary tree, so the big
/// multiplications pair operands of similar size and num-bigint's Karatsuba/Toom-3 apply.
pub fn factorial_tree(n: u64) -> BigUint {
    let mut words = Words::with_capacity(usize::try_from(n / 3 + 1).unwrap_or(0));
    for i in 2..=n {
        words.mul(i);
    }
    words.product()
}

/// Factors packed into machine words: each factor multiplies the last word while the
/// product fits in a `u64`, and starts a new word when it does not.
struct Words {
    /// The full words.
    full: Vec<u64>,
    /// The word being filled.
    acc: u64,
}

impl Words {
    /// No factor yet (the product 1), room for `capacity` full words.
    fn with_capacity(capacity: usize) -> Self {
        Self {
            full: Vec::with_capacity(capacity),
            acc: 1,
        }
    }

    /// Multiply by `factor`.
    fn mul(&mut self, factor: u64) {
        match self.acc.checked_mul(factor) {
            Some(v) => self.acc = v,
            None => {
                self.full.push(self.acc);
                self.acc = factor;
            }
        }
    }

    /// The product of every factor (the words multiplied as a balanced tree).
    fn product(mut self) -> BigUint {
        self.full.push(self.acc);
        product(&self.full)
    }
}

/// `n!` by Luschny's prime-swing recursion: `n!` is its odd part shifted left by
/// `n − popcount(n)` bits, and the odd part is `odd(n/2)² · oddswing(n)`, where the swing
/// `n! / ⌊n/2⌋!²` is built from its prime factorisation (each odd prime `p ≤ n` with the
/// exponent `Σₖ ⌊n/pᵏ⌋ mod 2`): fewer and smaller multiplications than multiplying all
/// the factors, and a squaring where the tree would multiply two different halves.
pub fn factorial_swing(n: u64) -> BigUint {
    let primes = odd_primes_up_to(n);
    odd_factorial(n, &primes) << (n - u64::from(n.count_ones()))
}

/// The odd part of `n!`.
fn odd_factorial(n: u64, primes: &[u64]) -> BigUint {
    if n < 2 {
        return BigUint::from(1u32);
    }
    let half = odd_factorial(n / 2, primes);
    &half * &half * odd_swing(n, primes)
}

/// The odd part of `n! / ⌊n/2⌋!²`, from its prime factorisation.
fn odd_swing(n: u64, primes: &[u64]) -> BigUint {
    let mut words = Words::with_capacity(0);
    for &p in primes.iter().take_while(|&&p| p <= n) {
        let e = if p > n / 2 {
            1
        } else if p > n / 3 {
            0
        } else if p * p > n {
            (n / p) & 1
        } else {
            let (mut q, mut e) = (n, 0);
            while q >= p {
                q /= p;
                e += q & 1;
            }
            e
        };
        for _ in 0..e {
            words.mul(p);
        }
    }
    words.product()
}

/// The odd primes up to `n` (sieve of Eratosthenes over odd numbers).
fn odd_primes_up_to(n: u64) -> Vec<u64> {
    if n < 3 {
        return Vec::new();
    }
    let size = usize::try_from((n - 1) / 2).unwrap_or(usize::MAX); // 3, 5, 7, … ≤ n
    let mut composite = vec![false; size];
    let mut i = 0;
    while i < size {
        let p = 2 * i as u64 + 3;
        if p * p > n {
            break;
        }
        if !composite[i] {
            let mut j = ((p * p - 3) / 2) as usize;
            while j < size {
                composite[j] = true;
                j += p as usize;
            }
        }
        i += 1;
    }
    (0..size)
        .filter(|&i| !composite[i])
        .map(|i| 2 * i as u64 + 3)
        .collect()
}

/// Product of `words` as a balanced tree.
fn product(words: &[u64]) -> BigUint {
    const LEAF: usize = 8;
    if words.len() <= LEAF {
        let mut acc = BigUint::from(1u32);
        for &w in words {
            acc *= w;
        }
        return acc;
    }
    let (lo, hi) = words.split_at(words.len() / 2);
    product(lo) * product(hi)
}

/// Number of decimal digits of `n!`, exact (`0! = 1! = 1` has one digit).
pub fn factorial_digits(n: u64) -> u64 {
    decimal_digits(&factorial_swing(n))
}

/// Number of decimal digits of `x` (1 for zero), exact, without a decimal conversion.
///
/// Estimates `L = log10 x` from the bit length and the top 64 bits. The estimate's error
/// is far below a safe margin; when `L` is not that close to an integer, the digit
/// count `floor(L) + 1` is certain without touching the big number again. Otherwise (`x`
/// within a hair of a power of ten) it is settled exactly by a comparison of
/// `x` with `10^k` computed by `BigUint::pow`.
pub fn decimal_digits(x: &BigUint) -> u64 {
    let bits = x.bits();
    if bits <= 64 {
        let v = x.iter_u64_digits().next().unwrap_or(0);
        return u64::from(v.checked_ilog10().unwrap_or(0)) + 1;
    }
    let shift = bits - 64;
    // x = top · 2^shift · (1 + e), 0 <= e < 2^-63.
    let top = (x >> shift).iter_u64_digits().next().unwrap_or(0);
    let log10 = (shift as f64 + (top as f64).log2()) * std::f64::consts::LOG10_2;
    let margin = estimate_margin(log10);
    let (lo, hi) = ((log10 - margin).floor(), (log10 + margin).floor());
    if lo == hi && lo >= 0.0 {
        return lo as u64 + 1;
    }
    digits_near(x, lo.max(0.0) as u64)
}

/// A bound on the error of the `f64` estimate of `log10 x` in [`decimal_digits`], with a
/// wide safety factor: the rounding of `top` to 53 bits and of `log2` cost ~2^-52
/// relative, the sum and product ~2^-52 × |L| each; we allow 2^-40 × |L| + 2^-30.
fn estimate_margin(log10: f64) -> f64 {
    log10.abs() * 2f64.powi(-40) + 2f64.powi(-30)
}

/// Digit count of `x` given `10^k <= x < 10^(k+2)` or so (`k` may be off by one either
/// way): finds the exact `k` with `10^k <= x < 10^(k+1)` by comparison and returns `k + 1`.
///
/// `10^k` is handled as `5^k · 2^k`: `x < 5^k · 2^k` exactly when `x >> k < 5^k`, and
/// `5^k` is a third smaller than `10^k`.
fn digits_near(x: &BigUint, mut k: u64) -> u64 {
    let exponent = u32::try_from(k).expect("fewer than 2^32 decimal digits");
    let mut pow5 = BigUint::from(5u32).pow(exponent); // 10^k = pow5 << k
    loop {
        if k > 0 && (x >> k) < pow5 {
            // x < 10^k
            k -= 1;
            pow5 /= 5u32;
            continue;
        }
        let next = &pow5 * 5u32;
        if (x >> (k + 1)) >= next {
            // x >= 10^(k+1)
            k += 1;
            pow5 = next;
            continue;
        }
        // 10^k <= x < 10^(k+1)
        return k + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digit_counts() {
        let cases = [
            (0, 1),
            (1, 1),
            (2, 1),
            (5, 3),
            (10, 7),
            (20, 19),
            (21, 20),
            (25, 26),
            (100, 158),
            (1000, 2568),
            (100_000, 456_574),
        ];
        for (n, digits) in cases {
            assert_eq!(factorial_digits(n), digits, "{n}!");
        }
    }

    #[test]
    fn tree_and_naive_agree() {
        for n in [0, 1, 2, 3, 20, 21, 22, 100, 257, 1000, 3001] {
            assert_eq!(factorial_tree(n), factorial_naive(n), "{n}!");
        }
        assert_eq!(factorial_tree(5), BigUint::from(120u32));
        assert_eq!(factorial_tree(0), BigUint::from(1u32));
    }

    #[test]
    fn prime_swing_agrees_with_the_tree() {
        for n in (0..=400).chain([1000, 4567, 10_007, 65_536, 100_000]) {
            assert_eq!(factorial_swing(n), factorial_tree(n), "{n}!");
        }
        assert_eq!(odd_primes_up_to(30), [3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert!(odd_primes_up_to(2).is_empty());
    }

    #[test]
    fn digits_match_to_string_for_small_n() {
        for n in 0..=300 {
            let f = factorial_tree(n);
            assert_eq!(factorial_digits(n), f.to_string().len() as u64, "{n}!");
        }
    }

    #[test]
    fn digits_exact_at_power_of_ten_boundaries() {
        let ten = BigUint::from(10u32);
        for k in (1u32..=200).chain([1000, 4567]) {
            let p = ten.pow(k);
            assert_eq!(decimal_digits(&p), u64::from(k) + 1, "10^{k}");
            assert_eq!(decimal_digits(&(&p - 1u32)), u64::from(k), "10^{k} - 1");
            assert_eq!(decimal_digits(&(&p + 1u32)), u64::from(k) + 1, "10^{k} + 1");
        }
        assert_eq!(decimal_digits(&BigUint::from(0u32)), 1);
        // The exact fallback on its own, from estimates one off either way.
        let f = factorial_tree(1000);
        for k in [2566, 2567, 2568] {
            assert_eq!(digits_near(&f, k), 2568, "from k = {k}");
        }
        assert_eq!(decimal_digits(&BigUint::from(u64::MAX)), 20);
        let big = BigUint::from(u64::MAX) * 1000u32;
        assert_eq!(decimal_digits(&big), big.to_string().len() as u64);
    }

    #[test]
    fn digits_match_to_string_around_boundaries() {
        // n where n! crosses into more digits by a small margin: check a spread of n.
        for n in [301, 449, 450, 999, 1001, 2047, 2048, 3249] {
            let f = factorial_tree(n);
            assert_eq!(decimal_digits(&f), f.to_string().len() as u64, "{n}!");
        }
    }
}
