//! `hab.factorial(n)`: a CPU-bound task returning the number of decimal digits of `n!`.
//!
//! `n!` is computed exactly with num-bigint by a product tree; its digit count is derived
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
    let mut words = Vec::with_capacity(usize::try_from(n / 3 + 1).unwrap_or(0));
    let mut acc: u64 = 1;
    for i in 2..=n {
        match acc.checked_mul(i) {
            Some(product) => acc = product,
            None => {
                words.push(acc);
                acc = i;
            }
        }
    }
    words.push(acc);
    product(&words)
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
    decimal_digits(&factorial_tree(n))
}

/// Number of decimal digits of `x` (1 for zero), exact, without a decimal conversion.
///
/// Estimates `k = floor(log10 x)` from the bit length and the top 64 bits (off by at most
/// one), then checks `10^k <= x < 10^(k+1)` exactly, stepping `k` until it holds. Powers
/// of ten are handled as `5^k · 2^k`: `x < 5^k · 2^k` exactly when `x >> k < 5^k`, and
/// `5^k` (one `BigUint::pow`) is a third smaller than `10^k`.
pub fn decimal_digits(x: &BigUint) -> u64 {
    let bits = x.bits();
    if bits <= 64 {
        let v = x.iter_u64_digits().next().unwrap_or(0);
        return u64::from(v.checked_ilog10().unwrap_or(0)) + 1;
    }
    let shift = bits - 64;
    let top = (x >> shift).iter_u64_digits().next().unwrap_or(0);
    let log2 = shift as f64 + (top as f64).log2();
    let mut k = (log2 * std::f64::consts::LOG10_2).floor() as u64;
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
    fn digits_match_to_string_for_small_n() {
        for n in 0..=300 {
            let f = factorial_tree(n);
            assert_eq!(factorial_digits(n), f.to_string().len() as u64, "{n}!");
        }
    }

    #[test]
    fn digits_exact_at_power_of_ten_boundaries() {
        let ten = BigUint::from(10u32);
        for k in [1u32, 2, 18, 19, 20, 63, 64, 100, 1000, 4567] {
            let p = ten.pow(k);
            assert_eq!(decimal_digits(&p), u64::from(k) + 1, "10^{k}");
            assert_eq!(decimal_digits(&(&p - 1u32)), u64::from(k), "10^{k} - 1");
            assert_eq!(decimal_digits(&(&p + 1u32)), u64::from(k) + 1, "10^{k} + 1");
        }
        assert_eq!(decimal_digits(&BigUint::from(0u32)), 1);
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
