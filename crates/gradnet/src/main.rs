//! The `gradnet` binary: node, hub client, inference client, receipts, demo.

mod cli;
mod commands;
mod config;

use anyhow::Result;
use clap::Parser;

use cli::{Cli, Command};
use commands::keys::KeysCmd;
use commands::node::NodeCmd;
use commands::receipt::ReceiptCmd;
use gradnet_client::NodeClient as Client;

fn main() {
    let cli = Cli::parse();
    if let Command::Node(NodeCmd::Start(args)) = &cli.command {
        if let Some(n) = args.llm_threads.filter(|n| *n > 0) {
            // read once by candle when its thread pool starts, before any thread exists here
            std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    if let Err(e) = rt.block_on(run(cli)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    let client = Client::new(&cli.node);
    match cli.command {
        Command::Node(NodeCmd::Start(args)) => {
            commands::node::start(config::NodeConfig::resolve(&args)?).await
        }
        Command::Model(args) => commands::model::run(client, args).await,
        Command::Infer(args) => commands::infer::run(&args.pay.client(&client)?, args).await,
        Command::Chat(args) => commands::chat::chat(&args.gen.pay.client(&client)?, args).await,
        Command::Completion(args) => {
            commands::chat::completion(&args.gen.pay.client(&client)?, args).await
        }
        Command::Pay(cmd) => commands::pay::run(&client, cmd).await,
        Command::Receipt(ReceiptCmd::Verify { file, signer }) => {
            println!(
                "{}",
                commands::receipt::verify_file(&file, signer.as_deref())?
            );
            Ok(())
        }
        Command::Receipt(ReceiptCmd::Settle {
            batch,
            key,
            chunk,
            hub,
            rpc,
        }) => commands::receipt_batch::settle(&batch, &key, chunk, hub.as_deref(), &rpc.rpc).await,
        Command::Receipt(ReceiptCmd::Prove { batch, index, rpc }) => {
            commands::receipt_batch::prove(&batch, index, &rpc.rpc).await
        }
        Command::Keys(KeysCmd::New { out }) => commands::keys::new(out),
        Command::Zk(cmd) => commands::zk::run(&client, cmd).await,
        Command::Demo(args) => commands::demo::run(args).await,
        Command::Devnet(args) => commands::devnet::run(args).await,
        Command::Init(args) => commands::init::run(args),
        Command::Chain(cmd) => commands::chain::run(cmd).await,
        Command::Gateway(args) => commands::gateway::run(args).await,
    }
}
