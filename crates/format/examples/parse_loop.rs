//! Parses a description in a loop, for profiling (`perf record`): `cargo run --release
//! --example parse_loop -- FILE [ITERATIONS]`.

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: parse_loop FILE [ITERATIONS]");
    let n: u64 = args
        .next()
        .map_or(10_000_000, |s| s.parse().expect("a number"));
    let bytes = std::fs::read(path).expect("readable file");
    let mut total = 0usize;
    for _ in 0..n {
        total += devfd_format::parse(std::hint::black_box(&bytes)).map_or(0, |d| d.len());
    }
    println!("{total}");
}
