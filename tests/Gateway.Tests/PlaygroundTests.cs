using Gpt2Orleans.Gateway.Tests.Support;
using Gpt2Orleans.Tests.Shared;
using System.Net;
using Microsoft.Playwright;

namespace Gpt2Orleans.Gateway.Tests;

/// <summary>
/// The playground in a real browser: Microsoft.Playwright drives Debian's Chromium (headless) to open the page, send
/// a message, watch the reply stream in, fork and reset the session, and check the page on a phone-sized screen. Screenshots are
/// saved under artifacts/playground/ at the repository root.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class PlaygroundTests(GatewayFixture fixture)
{
    // Chromium as root on a closed network: no sandbox, no GPU, and no background calls to Google's hosts.
    private static readonly string[] ChromiumArgs =
    [
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
    ];

    private static string Artifacts
    {
        get
        {
            string folder = Path.Combine(Repository.Root, "artifacts", "playground");
            Directory.CreateDirectory(folder);
            return folder;
        }
    }

    [Fact]
    public async Task A_message_sent_in_the_playground_streams_its_reply_and_the_page_fits_a_phone()
    {
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ToolPaths.Chromium, Headless = true, Args = ChromiumArgs, Timeout = 60_000,
        });
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1200, Height = 800 } });
        page.SetDefaultTimeout(30_000);
        await page.GotoAsync(fixture.BaseAddress + "#key=" + GatewayFixture.Key);

        await Assertions.Expect(page.Locator("#status")).ToContainTextAsync("Connected");
        await Assertions.Expect(page.Locator("#model")).ToHaveValueAsync(GatewayFixture.Model); // only language models are offered
        string firstSession = await page.Locator("#session").InnerTextAsync();

        // Count the changes to the reply as it is written: a streamed reply changes many times.
        await page.EvaluateAsync("""
            () => {
              window.replyUpdates = 0;
              new MutationObserver(() => window.replyUpdates++).observe(document.getElementById('transcript'), { subtree: true, childList: true, characterData: true });
            }
            """);
        await page.FillAsync("#max_tokens", "24");
        await page.FillAsync("#message", "Hello! Who are you?");
        await page.ClickAsync("#send");
        var reply = page.Locator("#transcript li.assistant").Last;
        await Assertions.Expect(reply).Not.ToHaveClassAsync(new System.Text.RegularExpressions.Regex("streaming"));
        await Assertions.Expect(page.Locator("#speed")).ToContainTextAsync("tokens/s");
        string replyText = await reply.InnerTextAsync();
        Assert.False(string.IsNullOrWhiteSpace(replyText));
        Assert.True(await page.EvaluateAsync<int>("() => window.replyUpdates") >= 4, "the reply arrived in several pieces");
        Assert.Equal("Hello! Who are you?", await page.Locator("#transcript li.user").Last.InnerTextAsync());
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Artifacts, "desktop.png"), FullPage = true });

        // The server kept the same conversation.
        using var client = fixture.Client();
        var transcript = await Http.ReadJson(await client.GetAsync($"/v1/sessions/{firstSession}"));
        Assert.Equal(replyText.Trim(), transcript.GetProperty("messages")[1].GetProperty("content").GetString());

        await page.ClickAsync("#fork");
        await Assertions.Expect(page.Locator("#status")).ToContainTextAsync("Forked");
        Assert.NotEqual(firstSession, await page.Locator("#session").InnerTextAsync());
        await Assertions.Expect(page.Locator("#transcript li.assistant")).ToHaveCountAsync(1); // the fork shows the copied conversation
        string fork = await page.Locator("#session").InnerTextAsync();

        await page.ClickAsync("#reset"); // deletes the session and starts an empty one
        await Assertions.Expect(page.Locator("#transcript li.assistant")).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator("#session")).Not.ToHaveTextAsync(fork);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync($"/v1/sessions/{fork}")).StatusCode);

        // A phone-sized screen: one column, nothing wider than the screen.
        await page.SetViewportSizeAsync(390, 844);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Artifacts, "phone.png"), FullPage = true });
        Assert.True(await page.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways on a narrow screen");
        var settings = await page.Locator("#settings").BoundingBoxAsync();
        var chat = await page.Locator("#chat").BoundingBoxAsync();
        Assert.True(chat!.Y >= settings!.Y + settings.Height - 1, "on a narrow screen the chat sits below the settings");
    }
}
