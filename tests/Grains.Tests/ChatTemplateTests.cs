namespace Gpt2Orleans.Grains.Tests;

/// <summary>How a chat template renders conversations and turns (plain logic, no cluster).</summary>
public sealed class ChatTemplateTests
{
    private static readonly ChatTemplate Default = ChatTemplate.Default;

    [Fact]
    public void The_default_renders_plain_user_and_assistant_lines_and_stops_at_the_next_user_line()
    {
        Assert.Equal("Be brief.\nUser: Hi\nAssistant: Hello.\nUser: Why?\nAssistant:",
            Default.Render([("system", " Be brief. "), ("user", "Hi"), ("assistant", "Hello."), ("user", "Why?")]));
        Assert.Equal(["\nUser:"], Default.StopStrings);
        Assert.Equal("Hello there.", Default.ReplyText(" Hello there.\nUser: and more"));
        Assert.Throws<InvalidRequestException>(() => Default.Render([("wizard", "x")]));
    }

    [Fact]
    public void A_turn_after_a_reply_that_stopped_on_the_next_user_line_goes_on_from_it()
    {
        string? openedBy = Default.OpenedBy("\nUser:"); // the stop string the engine says ended the reply
        Assert.Equal("\nUser:", openedBy);
        // What the model wrote plus the next turn reads as if the template had written it once.
        Assert.Equal("\nUser: And you?\nAssistant:", Default.UserTurnText("And you?", first: false));
        Assert.Equal(" And you?\nAssistant:", Default.UserTurnText("And you?", first: false, openedBy));
        Assert.Null(Default.OpenedBy(null));
        Assert.Null(Default.OpenedBy("###")); // a request's own stop string opens no turn
        Assert.Equal("User: Hi\nAssistant:", Default.UserTurnText("Hi", first: true));
    }

    [Fact]
    public void A_custom_template_derives_its_stop_from_its_user_line()
    {
        var qa = new ChatTemplate { User = "Q: {content}\n", AssistantPrefix = "A:" };
        Assert.Equal(["\nQ:"], qa.StopStrings);
        Assert.Equal(["\nQ:", "###"], qa.StopsWith(["###", "\nQ:"]));
        Assert.Throws<InvalidRequestException>(() => new ChatTemplate { System = "no slot" }.Validate("m"));
        Assert.Throws<InvalidRequestException>(() => new ChatTemplate { Stop = [""] }.Validate("m"));
    }
}
