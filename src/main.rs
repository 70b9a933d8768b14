//! The `boxoffice` command: `serve` (default), `migrate`, `demo`.

use std::process::ExitCode;

use boxoffice::config::Settings;
use boxoffice::startup::Application;
use boxoffice::{demo, persistence, telemetry};

const USAGE: &str = "usage: boxoffice [serve | migrate | demo]
  serve    run the server (default)
  migrate  apply database migrations and exit
  demo     seed a demo organizer, venue and on-sale, then serve
Settings come from the environment; see the README.";

#[actix_web::main]
async fn main() -> ExitCode {
    let command = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "serve".to_owned());
    if matches!(command.as_str(), "-h" | "--help" | "help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("boxoffice: {error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_format);
    let outcome = match command.as_str() {
        "serve" => serve(settings).await,
        "migrate" => migrate(&settings).await,
        "demo" => run_demo(settings).await,
        other => {
            eprintln!("boxoffice: unknown command {other:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("boxoffice: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let application = Application::build(settings).await?;
    tracing::info!(port = application.port(), "boxoffice is serving");
    application.run_until_stopped().await
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let pool = persistence::connect(&settings.database_url, 2).await?;
    persistence::migrate(&pool).await?;
    tracing::info!("migrations applied");
    Ok(())
}

async fn run_demo(settings: Settings) -> anyhow::Result<()> {
    let application = Application::build(settings).await?;
    let demo = demo::seed(application.pool(), application.engine().clock().now()).await?;
    let base = format!("http://127.0.0.1:{}", application.port());
    println!(
        "\nboxoffice demo is up at {base}/\n  event     {base}/api/v1/events/{event}  ({capacity} places; on sale in a minute)\n  \
         catalog   {base}/api/v1/events\n  API       {base}/api/openapi.json\n  organizer {email} / {password}\n",
        event = demo.event_id,
        capacity = demo.capacity,
        email = demo::ORGANIZER_EMAIL,
        password = demo::ORGANIZER_PASSWORD,
    );
    application.run_until_stopped().await
}
