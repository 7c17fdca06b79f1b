using Gpt2Orleans.Grains.Sessions;

namespace Gpt2Orleans.Grains.Tests;

/// <summary>Fitting a conversation into the context: reject with the sizes, or drop the oldest turns but never the system prompt.</summary>
public sealed class ConversationWindowTests
{
    /// <summary>System prompt of 3 tokens, then turns of 4 user + 4 reply tokens each.</summary>
    private static SessionState Conversation(int turns, ContextPolicy policy)
    {
        var state = new SessionState { Exists = true, ContextPolicy = policy, Tokens = [1, 2, 3] };
        for (int t = 0; t < turns; t++)
        {
            var plan = ConversationWindow.Plan(state, [10 * t + 1, 10 * t + 2, 10 * t + 3, 10 * t + 4], 0, 1000);
            ConversationWindow.Commit(state, plan, $"user {t}", $"reply {t}", [100 + t, 100 + t, 100 + t, 100 + t]);
        }
        return state;
    }

    [Fact]
    public void A_turn_that_fits_is_the_history_plus_the_turn()
    {
        var state = Conversation(2, ContextPolicy.Reject);
        var plan = ConversationWindow.Plan(state, [7, 7], maxNewTokens: 5, contextLength: 3 + 16 + 2 + 5);
        Assert.Equal([.. state.Tokens, 7, 7], plan.Prompt);
        Assert.Equal(0, plan.DroppedTurns);
    }

    [Fact]
    public void Reject_refuses_a_turn_that_would_overflow_and_names_the_sizes()
    {
        var state = Conversation(2, ContextPolicy.Reject);
        var error = Assert.Throws<InvalidRequestException>(() => ConversationWindow.Plan(state, [7, 7], maxNewTokens: 6, contextLength: 26));
        Assert.Contains("19 tokens", error.Message);
        Assert.Contains("26", error.Message);
        Assert.Equal("max_new_tokens", error.Parameter);
    }

    [Fact]
    public void Drop_oldest_removes_whole_turns_from_the_start_but_keeps_the_system_prompt()
    {
        var state = Conversation(3, ContextPolicy.DropOldestTurns);
        var plan = ConversationWindow.Plan(state, [7, 7], maxNewTokens: 4, contextLength: 3 + 8 + 2 + 4);
        Assert.Equal(2, plan.DroppedTurns);
        Assert.Equal([1, 2, 3, 21, 22, 23, 24, 102, 102, 102, 102, 7, 7], plan.Prompt);

        ConversationWindow.Commit(state, plan, "new", "answer", [9]);
        Assert.Equal(["user 2", "reply 2", "new", "answer"], state.Turns.Select(t => t.Text));
        Assert.Equal([3, 11], state.TurnStarts);
        Assert.Equal([1, 2, 3, 21, 22, 23, 24, 102, 102, 102, 102, 7, 7, 9], state.Tokens);
    }

    [Fact]
    public void A_turn_too_long_even_alone_is_refused_whatever_the_policy()
    {
        var state = Conversation(1, ContextPolicy.DropOldestTurns);
        Assert.Throws<InvalidRequestException>(() => ConversationWindow.Plan(state, [7, 7, 7, 7, 7, 7], maxNewTokens: 5, contextLength: 10));
    }
}
