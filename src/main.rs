// hab's producer and workers allocate for every AMQP frame they parse (lapin builds each
// message's header table as a map); mimalloc makes those allocations cheaper than glibc's
// malloc, which shows on a 2-core machine where hab's CPU comes out of the brokers' share.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let code = hab::cli::main();
    std::process::exit(code);
}
