namespace Gpt2Orleans.Grains.Sessions;

/// <summary>The prompt of the next turn and what had to go to fit the model's context.</summary>
public sealed record TurnPlan(IReadOnlyList<int> Prompt, int DroppedTurns, int NewTurnStart);

/// <summary>
/// Fits a conversation's token history into the model's context (plain logic, tested without Orleans): the next
/// prompt is the history plus the new turn, and history + turn + max_new_tokens must not exceed n_positions.
/// When it would, <see cref="ContextPolicy.Reject"/> refuses with the sizes and <see cref="ContextPolicy.DropOldestTurns"/>
/// drops whole turns from the oldest on, never the system prompt.
/// </summary>
public static class ConversationWindow
{
    public static TurnPlan Plan(SessionState state, IReadOnlyList<int> turnTokens, int maxNewTokens, int contextLength)
    {
        int systemLength = state.TurnStarts.Count > 0 ? state.TurnStarts[0] : state.Tokens.Count;
        int needed = turnTokens.Count + maxNewTokens;
        if (systemLength + needed > contextLength)
            throw new InvalidRequestException(
                $"this turn ({turnTokens.Count} tokens) plus max_new_tokens ({maxNewTokens}) and the system prompt ({systemLength} tokens) exceed the model's context of {contextLength} tokens",
                "max_new_tokens");
        int dropped = 0;
        while (state.Tokens.Count - DroppedLength(state, dropped) + needed > contextLength)
        {
            if (state.ContextPolicy == ContextPolicy.Reject)
                throw new InvalidRequestException(
                    $"the conversation ({state.Tokens.Count} tokens) plus this turn ({turnTokens.Count}) and max_new_tokens ({maxNewTokens}) exceeds the model's context of {contextLength} tokens; start a new session or create it with the drop-oldest-turns policy",
                    "max_new_tokens");
            dropped++;
        }
        var prompt = new List<int>(state.Tokens.Take(systemLength));
        prompt.AddRange(state.Tokens.Skip(systemLength + DroppedLength(state, dropped)));
        int newTurnStart = prompt.Count;
        prompt.AddRange(turnTokens);
        return new TurnPlan(prompt, dropped, newTurnStart);
    }

    /// <summary>Records a finished turn: the history becomes the prompt plus the generated tokens; dropped turns leave the transcript too.</summary>
    public static void Commit(SessionState state, TurnPlan plan, string userText, string replyText, IReadOnlyList<int> generated)
    {
        if (plan.DroppedTurns > 0)
        {
            int removed = DroppedLength(state, plan.DroppedTurns);
            var starts = state.TurnStarts.Skip(plan.DroppedTurns).Select(s => s - removed).ToList();
            state.TurnStarts = starts;
            state.Turns.RemoveRange(0, Math.Min(state.Turns.Count, 2 * plan.DroppedTurns));
        }
        state.TurnStarts.Add(plan.NewTurnStart);
        state.Tokens = [.. plan.Prompt, .. generated];
        state.Turns.Add(new SessionTurn("user", userText));
        state.Turns.Add(new SessionTurn("assistant", replyText));
    }

    /// <summary>How many tokens the oldest <paramref name="turns"/> turns hold.</summary>
    private static int DroppedLength(SessionState state, int turns)
    {
        if (turns == 0) return 0;
        int systemLength = state.TurnStarts[0];
        int end = turns < state.TurnStarts.Count ? state.TurnStarts[turns] : state.Tokens.Count;
        return end - systemLength;
    }
}
